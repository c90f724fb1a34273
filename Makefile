# Entry points; each is one script under scripts/.
.PHONY: test demo bench controlplane image

test:            ## the whole suite, installing what it needs (what CI runs)
	scripts/test.sh

demo:            ## the incident, played on a local control plane and OpenBao
	scripts/demo.sh

bench:           ## eso-recovery against the shell CronJob people write instead
	bench/run.sh

controlplane:    ## build etcd, kube-apiserver, kube-controller-manager, kubectl once
	tests/controlplane/build.sh

image:           ## the container image (needs a Docker engine)
	docker build -t eso-recovery:dev .
