from django.urls import path

from . import views

urlpatterns = [
    path("authenticate/", views.start, name="oidc_authentication_init"),
    path("callback/", views.callback, name="oidc_authentication_callback"),
]
