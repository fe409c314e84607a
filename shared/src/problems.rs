//! The problems found in a configuration: each section adds its own, so an
//! operator sees every one at once instead of fixing them one run at a time.

#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Records `problem` unless `ok`.
    pub fn check(&mut self, ok: bool, problem: &str) {
        if !ok {
            self.0.push(problem.to_owned());
        }
    }

    pub fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// `Ok` when nothing was recorded, else every problem in order.
    pub fn into_result(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
