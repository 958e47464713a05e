"""Where records go: JSON Lines log, MQTT, the final report."""
