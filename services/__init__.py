"""The five headrace services; each is its own process (`headrace run <service>`)."""
