from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from chatbot import views
from chatbot.mail import views as mail_views

urlpatterns = [
    path("", RedirectView.as_view(url="/demo/", permanent=False)),
    path("demo/", views.demo_store, name="demo-store"),
    path("demo/orders/", views.demo_orders, name="demo-orders"),  # before the stores' pages: "orders" is no store
    path("demo/<slug:slug>/", views.demo_store, name="demo-store-tenant"),
    path("healthz", views.health, name="health"),
    path("inbound/email/", mail_views.inbound_email, name="inbound-email"),  # visitors' answers by e-mail
    path("admin/", admin.site.urls),
    # The agent console and its own login (the agent socket uses this session).
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", include("chatbot.console.urls")),
]
