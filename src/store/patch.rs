//! Field-level changes to one tenant's record, applied under the store's lock to the record as
//! it is in the file then, never a whole record read earlier.
//!
//! A step works on its copy of the record; what it changed since it last read or wrote it is
//! a [`RecordPatch`] (the fields that differ, down to nested objects such as one step's state
//! or `portal.told`). Applying the patch to the fresh record keeps what another process wrote
//! meanwhile to any other field.

use serde_json::{Map, Value};

use super::TenantRecord;

/// The fields that differ between two versions of a record, with the later values.
#[derive(Debug, Clone)]
pub struct RecordPatch {
    /// Paths of JSON object keys, each set to (or removed as in) `after`.
    paths: Vec<Vec<String>>,
    after: Value,
}

impl RecordPatch {
    /// What changed from `before` to `after` (`updated_at` is not a change of its own: the
    /// store stamps it).
    pub fn between(before: &TenantRecord, after: &TenantRecord) -> RecordPatch {
        let (b, a) = (to_value(before), to_value(after));
        let mut paths = Vec::new();
        diff(&b, &a, &mut Vec::new(), &mut paths);
        paths.retain(|p| p.first().map(String::as_str) != Some("updatedAt"));
        RecordPatch { paths, after: a }
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Top-level and nested fields changed, as dotted paths (for tests and -v).
    pub fn fields(&self) -> Vec<String> {
        self.paths.iter().map(|p| p.join(".")).collect()
    }

    /// Sets each changed field of `rec` to its later value, leaving every other field as
    /// `rec` has it. Where `rec` no longer has the object a field lives in (another process
    /// cleared it), the whole object is taken from the later version.
    pub fn apply(&self, rec: &mut TenantRecord) -> Result<(), serde_json::Error> {
        let mut v = to_value(rec);
        for path in &self.paths {
            set_path(&mut v, &self.after, path);
        }
        *rec = serde_json::from_value(v)?;
        Ok(())
    }
}

fn to_value(rec: &TenantRecord) -> Value {
    serde_json::to_value(rec).expect("a tenant record serializes")
}

fn diff(a: &Value, b: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (x.get(k), y.get(k));
                if va == vb {
                    continue;
                }
                at.push(k.clone());
                match (va, vb) {
                    (Some(va), Some(vb)) => diff(va, vb, at, out),
                    _ => out.push(at.clone()),
                }
                at.pop();
            }
        }
        _ if a != b => out.push(at.clone()),
        _ => {}
    }
}

fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.as_object()?.get(k))
}

fn set_path(root: &mut Value, after: &Value, path: &[String]) {
    let mut node = root;
    for (i, k) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if !node.is_object() {
            // The parent is gone (or not an object) in the fresh record: take it whole.
            *node = lookup(after, &path[..i]).cloned().unwrap_or(Value::Null);
            return;
        }
        let obj: &mut Map<String, Value> = node.as_object_mut().expect("checked");
        if last {
            match lookup(after, path) {
                Some(v) => {
                    obj.insert(k.clone(), v.clone());
                }
                None => {
                    obj.remove(k);
                }
            }
            return;
        }
        node = obj.entry(k.clone()).or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::store::{AppRecord, StepId, StepStatus};

    fn rec() -> TenantRecord {
        TenantRecord::new(
            uuid::Uuid::from_u128(7),
            "contoso.onmicrosoft.com",
            "Contoso",
            Cloud::Global,
        )
    }

    #[test]
    fn only_the_changed_fields_are_applied_to_the_fresh_record() {
        let before = rec();
        let mut mine = before.clone();
        mine.step_mut(StepId::Consent)
            .record(StepStatus::Done, None);
        mine.granted_permissions = vec!["graph/AuditLog.Read.All".into()];
        // Meanwhile another process flipped fields this step does not own.
        let mut fresh = before.clone();
        fresh.keep_sign_in = true;
        fresh.display_name = "Contoso (renamed)".into();
        fresh
            .step_mut(StepId::Exchange)
            .record(StepStatus::Waiting, Some("propagating".into()));

        let p = RecordPatch::between(&before, &mine);
        p.apply(&mut fresh).unwrap();
        assert!(fresh.keep_sign_in, "{:?}", p.fields());
        assert_eq!(fresh.display_name, "Contoso (renamed)");
        assert_eq!(fresh.steps.exchange.status, StepStatus::Waiting);
        assert_eq!(fresh.steps.consent.status, StepStatus::Done);
        assert_eq!(fresh.granted_permissions, mine.granted_permissions);
    }

    #[test]
    fn a_field_set_to_none_is_removed_and_a_cleared_parent_is_taken_whole() {
        let mut before = rec();
        before.app = Some(AppRecord {
            object_id: "o".into(),
            app_id: "a".into(),
            display_name: "hal".into(),
            service_principal_id: None,
        });
        let mut mine = before.clone();
        mine.app.as_mut().unwrap().service_principal_id = Some("sp".into());
        // Another process forgot the app meanwhile: the step's app is written whole.
        let mut fresh = before.clone();
        fresh.app = None;
        RecordPatch::between(&before, &mine)
            .apply(&mut fresh)
            .unwrap();
        assert_eq!(fresh.app, mine.app);

        let mut cleared = before.clone();
        cleared.app = None;
        let mut fresh = before.clone();
        fresh.keep_sign_in = true;
        RecordPatch::between(&before, &cleared)
            .apply(&mut fresh)
            .unwrap();
        assert_eq!(fresh.app, None);
        assert!(fresh.keep_sign_in);
    }

    #[test]
    fn via_is_a_field_of_its_own_kept_by_writes_that_do_not_set_it() {
        use crate::store::Via;
        let before = rec();
        // The partner pipeline marks the record; meanwhile a step elsewhere records its state.
        let mut marked = before.clone();
        marked.via = Via::Partner;
        let mut step = before.clone();
        step.step_mut(StepId::Secret).record(StepStatus::Done, None);

        let p = RecordPatch::between(&before, &marked);
        assert_eq!(p.fields(), vec!["via".to_string()]);
        let mut fresh = before.clone();
        RecordPatch::between(&before, &step)
            .apply(&mut fresh)
            .unwrap();
        p.apply(&mut fresh).unwrap();
        assert_eq!(fresh.via, Via::Partner);
        assert!(fresh.steps.secret.is_done());

        // The other order: a step's write over a partner record leaves `via` alone.
        let mut fresh = marked.clone();
        RecordPatch::between(&before, &step)
            .apply(&mut fresh)
            .unwrap();
        assert_eq!(fresh.via, Via::Partner);
    }

    #[test]
    fn nothing_changed_is_an_empty_patch() {
        let a = rec();
        let mut b = a.clone();
        b.updated_at += time::Duration::seconds(5);
        assert!(RecordPatch::between(&a, &b).is_empty());
    }
}
