//! Field paths in the user's own API version: the rules (`crate::validation`) check the `v1beta1` form every
//! version converts to, and name `v1beta1` fields; a refusal of a `v1alpha5` or `v1alpha6` object names the field
//! as that version spells it (docs/webhooks.md, "Refusals").

use crate::resources::labels::PROVIDER_ANNOTATION;

/// `path`, a field of a `v1beta1` `kind`, as `version` spells it; unchanged where the versions agree or where the
/// older version has no such field.
pub fn field_path(version: &str, kind: &str, path: &str) -> String {
    let alpha5 = version == "v1alpha5";
    if !alpha5 && version != "v1alpha6" {
        return path.to_string();
    }
    let provider_annotation = format!("metadata.annotations[{PROVIDER_ANNOTATION}]");
    let renames: &[(&str, &str)] = match kind {
        "Run" | "RunSchedule" => &[("spec.parameters", "spec.runtimeParameters")],
        "RunConfiguration" => &[("spec.run.parameters", "spec.run.runtimeParameters")],
        // The older versions choose the framework by `tfxComponents` (set: tfx).
        "Pipeline" => &[("spec.framework.name", "spec.tfxComponents")],
        _ => &[],
    };
    let mut path = rename(path, renames);
    if alpha5 {
        // v1alpha5 names the Provider in an annotation, and writes cron expressions as plain strings.
        let provider = match kind {
            "RunConfiguration" => "spec.run.provider",
            _ => "spec.provider",
        };
        path = rename(&path, &[(provider, provider_annotation.as_str())]);
        path = match kind {
            "RunSchedule" => rename(&path, &[("spec.schedule.cronExpression", "spec.schedule")]),
            "RunConfiguration" => cron_strings(&path),
            _ => path,
        };
    }
    path
}

/// `path` with the first matching `from` prefix (a whole field: followed by nothing, `.` or `[`) replaced.
fn rename(path: &str, renames: &[(&str, &str)]) -> String {
    for (from, to) in renames {
        if let Some(rest) = path.strip_prefix(from)
            && (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
        {
            return format!("{to}{rest}");
        }
    }
    path.to_string()
}

/// `spec.triggers.schedules[i].cronExpression` -> `spec.triggers.schedules[i]` (v1alpha5 lists cron strings).
fn cron_strings(path: &str) -> String {
    match path.strip_prefix("spec.triggers.schedules[") {
        Some(rest) => match rest.split_once("].cronExpression") {
            Some((index, tail)) => format!("spec.triggers.schedules[{index}]{tail}"),
            None => path.to_string(),
        },
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_spells_its_own_fields() {
        let annotation = "metadata.annotations[pipelines.kubeflow.org/provider]";
        let cases = [
            ("v1beta1", "Run", "spec.parameters[1]", "spec.parameters[1]"),
            (
                "v1alpha6",
                "Run",
                "spec.parameters[1]",
                "spec.runtimeParameters[1]",
            ),
            (
                "v1alpha5",
                "Run",
                "spec.parameters[1].valueFrom",
                "spec.runtimeParameters[1].valueFrom",
            ),
            ("v1alpha6", "Run", "spec.provider", "spec.provider"),
            ("v1alpha5", "Run", "spec.provider", annotation),
            ("v1alpha5", "Pipeline", "spec.provider", annotation),
            ("v1alpha5", "Experiment", "spec.provider", annotation),
            (
                "v1alpha6",
                "Pipeline",
                "spec.framework.name",
                "spec.tfxComponents",
            ),
            (
                "v1alpha5",
                "RunSchedule",
                "spec.schedule.cronExpression",
                "spec.schedule",
            ),
            (
                "v1alpha6",
                "RunSchedule",
                "spec.schedule.cronExpression",
                "spec.schedule.cronExpression",
            ),
            ("v1alpha5", "RunConfiguration", "spec.run.provider", annotation),
            (
                "v1alpha5",
                "RunConfiguration",
                "spec.run.parameters[0]",
                "spec.run.runtimeParameters[0]",
            ),
            (
                "v1alpha5",
                "RunConfiguration",
                "spec.triggers.schedules[2].cronExpression",
                "spec.triggers.schedules[2]",
            ),
            (
                "v1alpha6",
                "RunConfiguration",
                "spec.triggers.schedules[2].cronExpression",
                "spec.triggers.schedules[2].cronExpression",
            ),
            (
                "v1alpha5",
                "RunConfiguration",
                "spec.triggers.onChange[1]",
                "spec.triggers.onChange[1]",
            ),
            // A prefix is a whole field: `spec.parametersX` is not `spec.parameters`.
            ("v1alpha5", "Run", "spec.parametersX", "spec.parametersX"),
            ("v1alpha5", "Run", "metadata.namespace", "metadata.namespace"),
        ];
        for (version, kind, path, expected) in cases {
            assert_eq!(
                field_path(version, kind, path),
                expected,
                "{version} {kind} {path}"
            );
        }
    }
}
