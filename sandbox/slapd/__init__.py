"""A throwaway OpenLDAP slapd for tests and the ldap-demo stack (see server.py, data.py)."""
