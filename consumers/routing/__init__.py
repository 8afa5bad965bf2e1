"""The router: projects the registration topics onto each department's own topic under its agreement, and the
disclosure ledger it writes in the same transaction."""
