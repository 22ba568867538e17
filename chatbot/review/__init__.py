"""The managers' view: transcript review and its queue, export, insights and what to fix first."""
