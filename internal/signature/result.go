package signature

// Status is what the signatures of one digest amount to.
type Status int

const (
	// Unverified: the registry could not be asked (unreachable, an error
	// status, refused credentials, a timeout), so nothing is known. It is
	// the zero value: a Result nobody filled in says nothing was verified.
	Unverified Status = iota
	// Unsigned: the registry answered and no signature it holds is one of
	// a policy key's over this digest in this repository.
	Unsigned
	// Signed: at least one key verifies a signature (Result.Keys).
	Signed
)

func (s Status) String() string {
	switch s {
	case Signed:
		return "signed"
	case Unsigned:
		return "unsigned"
	}
	return "unverified"
}

// Failure names why a signature was not counted, or why the registry could
// not be asked; it is the label of the failure counters in Stats.
type Failure string

const (
	FailUnreachable       Failure = "unreachable"        // no connection, or a 5xx or other error status
	FailAuth              Failure = "auth"               // 401 or 403 from the registry or its token service
	FailTimeout           Failure = "timeout"            // Options.Timeout ran out, or the caller gave up
	FailMalformed         Failure = "malformed"          // a manifest, payload, annotation or bundle that cannot be read, or more than the bounds allow
	FailBadSignature      Failure = "bad-signature"      // no key verifies the signature
	FailDigestMismatch    Failure = "digest-mismatch"    // the signed payload names another digest
	FailReferenceMismatch Failure = "reference-mismatch" // the signed payload names another repository
	FailNotFound          Failure = "not-found"          // Resolve: the registry has no such tag
)

// Result is the verdict on one digest.
type Result struct {
	Status Status
	// Keys are the names of the keys that verify a signature, sorted; empty
	// unless Status is Signed.
	Keys []string
	// Cause says why a result is Unsigned or Unverified, for the refusal
	// message: the registry's error, or what was wrong with the last
	// signature looked at.
	Cause string
	// Failure classifies Cause; empty for Signed, and for Unsigned when the
	// registry simply holds no signature.
	Failure Failure
}
