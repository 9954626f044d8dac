//! Kubernetes controllers for `PangeaTemplate` and `PangeaStack` (filled by the operator
//! issue): a pure `decide(spec, status, running execution, now) -> Step` at the centre,
//! execution backends (local in-process executor, Job), status written by server-side apply
//! only on change, Events, Prometheus metrics and notifications around it.
