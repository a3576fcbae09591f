//! `switchyard replay`: what this gateway, with its models and a user's traffic, saves and
//! loses.
//!
//! 1. [`collect`]: every model of the ladder answers every request of a [`Workload`] once,
//!    through a running gateway (the real execution path: routes' system prompts and
//!    knowledge bases, the guard, the local engine with logprobs, upstreams); the answers are
//!    kept in an [`AnswerCache`] so that an interrupted run resumes and a second one costs
//!    nothing.
//! 2. [`Grade`]: each answer is judged against the request's label.
//! 3. [`report`]: every router and baseline replayed offline on the same cached answers.

pub mod cache;
pub mod collect;
pub mod grade;
pub mod labels;
pub mod live;
pub mod report;
pub mod workload;

pub use cache::{Answer, AnswerCache};
pub use collect::{collect, Collected, Gateway, Target};
pub use grade::Grade;
pub use report::{report, Figures, Options, Report, ReportError};
pub use workload::{Item, Workload, WorkloadError};
