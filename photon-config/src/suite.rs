//! The suite's components and their default admin endpoints (`/health`, `/metrics`), so that
//! tools such as `photonctl status` know where to look on a single host. `docs/ports.md` is the
//! full table; keep the two in step.

pub struct ComponentInfo {
    pub name: &'static str,
    /// Default admin HTTP address on the local host.
    pub admin_endpoint: &'static str,
}

pub const COMPONENTS: &[ComponentInfo] = &[
    ComponentInfo {
        name: "chainfire",
        admin_endpoint: "http://127.0.0.1:2381",
    },
    ComponentInfo {
        name: "lightningstor",
        admin_endpoint: "http://127.0.0.1:9002",
    },
    ComponentInfo {
        name: "flashdns",
        admin_endpoint: "http://127.0.0.1:8053",
    },
    ComponentInfo {
        name: "fiberlb",
        admin_endpoint: "http://127.0.0.1:8081",
    },
    ComponentInfo {
        name: "nightlight",
        admin_endpoint: "http://127.0.0.1:9090",
    },
];
