"""cartrecovery: abandoned-cart and trigger emails that run in the store owner's own AWS account."""

__version__ = "0.1.0"
