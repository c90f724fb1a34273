//! The admin's kube-rs client on a runtime of its own, for harness work that would take a
//! kubectl process per call (polling every 250 ms, writing a thousand statuses).

use std::{future::Future, path::Path, time::Duration};

use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};

/// A client and the runtime that drives it, for synchronous tests.
pub struct KubeApi {
    rt: tokio::runtime::Runtime,
    /// The client, as the kubeconfig's user.
    pub client: Client,
}

impl KubeApi {
    /// Connects with `kubeconfig` through eso-recovery's own client setup.
    pub fn new(kubeconfig: &Path) -> KubeApi {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let client = rt.block_on(async {
            let kc = Kubeconfig::read_from(kubeconfig).expect("reading the kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .expect("loading the kubeconfig");
            eso_recovery::kube_client::client(&config, Duration::from_secs(10))
                .expect("building the client")
        });
        KubeApi { rt, client }
    }

    /// Runs `f` to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}
