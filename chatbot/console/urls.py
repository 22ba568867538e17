"""The agent console's pages, mounted at /console/."""
from django.urls import path

from chatbot.console import connections, content_views, me, team, views as console_views

from chatbot.review import insights_views, views as manager_views

from chatbot.learning import views as models_views

app_name = "console"

urlpatterns = [
    path("", console_views.inbox, name="inbox"),
    path("canned/", console_views.canned_list, name="canned"),
    path("canned/<int:reply_id>/", console_views.canned_edit, name="canned-edit"),
    path("canned/<int:reply_id>/delete/", console_views.canned_delete, name="canned-delete"),
    path("knowledge/", content_views.knowledge_list, name="knowledge"),
    path("knowledge/new/", content_views.knowledge_add, name="knowledge-add"),
    path("knowledge/<int:entry_id>/", content_views.knowledge_edit, name="knowledge-edit"),
    path("knowledge/<int:entry_id>/active/", content_views.knowledge_active, name="knowledge-active"),
    path("knowledge/<int:entry_id>/delete/", content_views.knowledge_delete, name="knowledge-delete"),
    path("texts/", content_views.store_texts, name="texts"),
    path("insights/", insights_views.insights_page, name="insights"),
    path("insights/fix/", insights_views.fixes_page, name="insights-fix"),
    path("insights/fix/recompute/", insights_views.fixes_recompute, name="insights-recompute"),
    path("review/", manager_views.review_list, name="review"),
    path("review/<int:conversation_id>/", manager_views.review_conversation, name="review-conversation"),
    path("review/queue/", manager_views.review_queue, name="review-queue"),
    path("review/queue/<int:message_id>/label/", manager_views.review_label, name="review-label"),
    path("export/", manager_views.export, name="export"),
    path("orders/", connections.connection_page, name="orders"),
    path("orders/connect/", connections.connection_connect, name="orders-connect"),
    path("orders/test/", connections.connection_test_view, name="orders-test"),
    path("orders/disconnect/", connections.connection_disconnect, name="orders-disconnect"),
    path("team/", team.team_page, name="team"),
    path("me/", me.me_page, name="me"),
    path("models/", models_views.models_page, name="models"),
    path("models/runs.json", models_views.runs_json, name="models-runs"),
    path("models/retrain/", models_views.retrain, name="models-retrain"),
    path("models/rollback/", models_views.rollback, name="models-rollback"),
]
