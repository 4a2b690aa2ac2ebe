"""The PPP control plane (RFC 1661, 1334, 1332, 1877), sans-I/O."""
