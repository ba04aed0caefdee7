app_name = "public_policy"

urlpatterns: list = []
