"""Registry: who is connected (credentials handshake, platform directory, HubClientInfo)."""
