"""Host side of the virtual board's USB: control-transfer link, pyusb backend, USB/IP export."""
