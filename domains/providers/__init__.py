"""How the domains app looks: DNS (``dns``, dnspython) and the web (``web``, broxiva.http)."""
