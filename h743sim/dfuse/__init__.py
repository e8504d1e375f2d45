"""ST DfuSe on the host side: .dfu files, memory-layout strings, images to download, the client."""
