# Entry points; each is one script under scripts/.
.PHONY: test demo bench bench-recovery controlplane eso image release chart-docs

test:            ## the whole suite, installing what it needs (what CI runs)
	scripts/test.sh

demo:            ## the incident, played on a one-node cluster: OpenBao, ESO and the CronJob as pods
	scripts/demo.sh

bench:           ## eso-recovery against the shell CronJob people write instead
	bench/run.sh

bench-recovery:  ## seconds from Vault back to the Secret synced, on the node: ESO alone, restart and resync, ESO single and in HA
	bench/recovery.sh

controlplane:    ## build etcd, kube-apiserver, kube-controller-manager, kubectl once
	tests/controlplane/build.sh

eso:             ## build ESO (2.9.0 from ../shared/eso, 0.16.2 from the module proxy) once
	tests/eso/build.sh 2.9.0 && tests/eso/build.sh 0.16.2

image:           ## the container image, built offline by buildah into target/image/*.oci.tar
	scripts/build-image.sh

release:         ## everything a tag publishes, built offline into dist/: make release VERSION=x.y.z
	scripts/release.sh $(VERSION)

chart-docs:      ## the chart's README, written by helm-docs from values.yaml's comments
	scripts/chart-docs.sh
