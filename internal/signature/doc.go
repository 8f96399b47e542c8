// Package signature finds the Sigstore signatures of an image digest in its
// registry and says which of the policy's public keys verify them.
//
// Two formats are read, both as cosign writes them with a key:
//
//   - the tag-based signatures of cosign 1 and 2: the tag sha256-<hex>.sig in
//     the image's repository, whose layers are simple-signing payloads, each
//     with its base64 signature in the dev.cosignproject.cosign/signature
//     annotation;
//   - Sigstore bundles attached to the image as OCI referrers (cosign 2 with
//     --new-bundle-format, cosign 3 by default), found through the registry's
//     referrers API or, where the registry has none, the referrers tag
//     schema (the tag sha256-<hex> holding an index).
//
// Verification is offline: the keys are the trust root, and nothing is asked
// of Rekor, Fulcio or a TUF repository. What counts as a signature is in
// docs/supply-chain.md.
package signature
