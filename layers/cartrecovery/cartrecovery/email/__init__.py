"""Email content: template context, rendering (``render``), money formatting and the MIME message.

Kept free of imports so that importing ``cartrecovery.email.mime`` does not pull in Jinja2.
"""
