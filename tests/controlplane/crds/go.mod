// Pins the External Secrets Operator release whose CRDs the tests install, verified by go.sum.
// Nothing is built from it: crds.sh reads config/crds/bases from the downloaded module.
module eso-recovery.test/controlplane/crds

go 1.24.0

require github.com/external-secrets/external-secrets v1.3.2
