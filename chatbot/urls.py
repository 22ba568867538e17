from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/demo/", permanent=False)),
    path("demo/", views.demo_store, name="demo-store"),
    path("demo/<slug:slug>/", views.demo_store, name="demo-store-tenant"),
    path("healthz", views.health, name="health"),
    path("admin/", admin.site.urls),
]
