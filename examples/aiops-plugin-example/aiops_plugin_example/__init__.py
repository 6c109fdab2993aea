"""An example third-party package with one aiops plugin of each kind (see docs/plugins.md)."""
