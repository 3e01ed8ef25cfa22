"""The only code that changes the kernel: namespaces, links (netlink), nftables."""
