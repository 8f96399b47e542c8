// Package signing signs images in a registry as cosign does, for tests:
// tag-based simple-signing signatures (cosign 1 and 2) and Sigstore
// bundles attached as OCI referrers (cosign 3), with options to forge the
// attacks a verifier must refuse.
package signing
