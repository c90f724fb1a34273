//! The design's system as processes on 127.0.0.1: no node, no pods; ESO's controller runs out of
//! cluster against the control plane.

pub mod controlplane;
pub mod eso_controller;
pub mod kube_api;
pub mod many;
pub mod openbao;
pub mod registry;
pub mod seed;
pub mod stack;
