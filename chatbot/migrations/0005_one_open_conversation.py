"""One open conversation per visitor, and CSAT between 1 and 5."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chatbot", "0004_agent_workspace_data")]

    operations = [
        migrations.AddConstraint(
            model_name='conversation',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'resolved'), _negated=True), fields=('visitor',), name='one_open_conversation_per_visitor'),
        ),
        migrations.AddConstraint(
            model_name='conversation',
            constraint=models.CheckConstraint(condition=models.Q(('csat__isnull', True), models.Q(('csat__gte', 1), ('csat__lte', 5)), _connector='OR'), name='csat_1_to_5'),
        ),
    ]
