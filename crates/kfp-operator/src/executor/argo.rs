//! The Argo executor (SPEC 4): one Workflow per provider operation.
