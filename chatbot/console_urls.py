"""The agent console's pages, mounted at /console/."""
from django.urls import path

from . import console_views

app_name = "console"

urlpatterns = [
    path("", console_views.inbox, name="inbox"),
    path("canned/", console_views.canned_list, name="canned"),
    path("canned/<int:reply_id>/", console_views.canned_edit, name="canned-edit"),
    path("canned/<int:reply_id>/delete/", console_views.canned_delete, name="canned-delete"),
]
