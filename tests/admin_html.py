"""Read the Django admin's HTML as a browser would: filter links and the fields a form posts."""

from html.parser import HTMLParser

CONTAINERS = ("div", "nav", "ul", "details", "section", "aside", "search")


class PageParser(HTMLParser):
    """Collect the links of the filter sidebar and date hierarchy, and every form's fields."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.filter_links: list[str] = []
        self.forms: dict[str, list[tuple[str, str]]] = {}
        self._in_filters = 0
        self._in_hierarchy = 0
        self._depth = 0
        self._form: str | None = None
        self._select: tuple[str, bool] | None = None
        self._select_values: list[str] = []
        self._select_first: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag in CONTAINERS:
            self._depth += 1
            if a.get("id") == "changelist-filter" and not self._in_filters:
                self._in_filters = self._depth
            if "xfull" in classes or "date-hierarchy" in classes:
                self._in_hierarchy = self._in_hierarchy or self._depth
        if tag == "a" and (self._in_filters or self._in_hierarchy) and a.get("href", "").startswith("?"):
            self.filter_links.append(a["href"])
        if tag == "form":
            self._form = a.get("id") or a.get("action") or "form"
            self.forms[self._form] = []
        if self._form is None:
            return
        fields = self.forms[self._form]
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "file", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if "disabled" in a:
                return
            fields.append((name, a.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select" and name and "disabled" not in a:
            self._select = (name, "multiple" in a)
            self._select_values, self._select_first = [], None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._select_values.append(value)
        elif tag == "textarea" and name and "disabled" not in a:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag):
        if tag in CONTAINERS:
            if self._in_filters == self._depth:
                self._in_filters = 0
            if self._in_hierarchy == self._depth:
                self._in_hierarchy = 0
            self._depth -= 1
        if self._form is None:
            return
        if tag == "select" and self._select:
            name, multiple = self._select
            values = self._select_values or ([] if multiple else [self._select_first or ""])
            self.forms[self._form].extend((name, v) for v in values)
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            # A browser drops the one newline that follows <textarea>.
            self.forms[self._form].append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser


def as_post_data(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def form_data(response, form_id: str) -> dict[str, list[str]]:
    """Return what the browser would post for the form `form_id` of `response`, unchanged."""
    return as_post_data(parse(response).forms[form_id])
