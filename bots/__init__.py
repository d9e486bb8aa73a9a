"""Trading bots that act on the exchange from outside: demo traffic today."""
