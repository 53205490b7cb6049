"""An AD-like LDAP server for tests and demos (ldaptor): see server.py and launcher.py."""
