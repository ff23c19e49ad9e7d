//! The one place the operator reads its pod's identity from the process environment: `POD_NAMESPACE` and
//! `POD_NAME`, which the chart sets from the downward API, and `HOSTNAME`. (Configuration overrides,
//! `KFP_OPERATOR_*`, are the configuration loader's: `operator::run` hands it the variables.)

/// The namespace the operator assumes when `POD_NAMESPACE` is unset or empty: the chart's default.
pub const DEFAULT_NAMESPACE: &str = "kfp-operator-system";

/// Who this operator process is, as Kubernetes sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// `POD_NAMESPACE`, else [`DEFAULT_NAMESPACE`]: where the webhook certificate Secret, compile Jobs and the
    /// leader election Lease live by default, and the namespace provider services post events to.
    pub namespace: String,
    /// `POD_NAME`, if set: the `reportingInstance` of Events and the leader election identity.
    pub name: Option<String>,
    hostname: Option<String>,
}

impl Pod {
    /// Read from this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Read from `vars` (name, value pairs); empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let (mut namespace, mut name, mut hostname) = (None, None, None);
        for (key, value) in vars {
            let slot = match key.as_str() {
                "POD_NAMESPACE" => &mut namespace,
                "POD_NAME" => &mut name,
                "HOSTNAME" => &mut hostname,
                _ => continue,
            };
            *slot = Some(value).filter(|v| !v.is_empty());
        }
        Self {
            namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            name,
            hostname,
        }
    }

    /// The leader election identity: `POD_NAME`, else `<HOSTNAME>-<pid>` (several processes on one host stay
    /// distinct), else `kfp-operator-<pid>`.
    pub fn identity(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let host = self.hostname.as_deref().unwrap_or("kfp-operator");
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_pod_from_the_downward_api_or_defaults() {
        let pod = Pod::from_vars(vars(&[
            ("POD_NAMESPACE", "ops"),
            ("POD_NAME", "op-0"),
            ("PATH", "/bin"),
        ]));
        assert_eq!(pod.namespace, "ops");
        assert_eq!(pod.identity(), "op-0");
        let pod = Pod::from_vars(vars(&[("POD_NAMESPACE", ""), ("HOSTNAME", "laptop")]));
        assert_eq!(pod.namespace, DEFAULT_NAMESPACE);
        assert_eq!(pod.name, None);
        assert_eq!(pod.identity(), format!("laptop-{}", std::process::id()));
    }
}
