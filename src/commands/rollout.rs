//! `mlambda rollout`: shift the alias's traffic to a candidate version, step by step under its alarms, or undo it.
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use super::Ctx;
use crate::aws::lambda::{self, AliasWrite, Written};
use crate::aws::{cloudwatch, Aws, Target};
use crate::config::Config;
use crate::domain::Weight;
use crate::error::{Error, Result};
use crate::plan::alarms::{self, Alarm, AlarmChange, AlarmState, Routed};
use crate::plan::alias::{AliasRouting, VersionFacts};
use crate::plan::evidence::{Decision, Look};
use crate::plan::lambda::{Alias, FunctionInfo};
use crate::plan::record::{self, AliasRecord, Lease, LeaseCheck, StepRecord};
use crate::plan::rollout::{self, Action, Current, Inputs, RolloutPlan, Step, Steps};
use crate::report::Report;
use crate::settings::{Project, RolloutAction, RolloutSettings, ShadowFirst};
use crate::shadowing;
use crate::state;
use crate::ui::Printer;
use crate::{gather, ledger};

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: RolloutPlan,
    /// Another operator's lease this command took over (expired) or broke (`--break-lease`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseNote>,
}

/// Whose lease was set aside, and how.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseNote {
    /// `expired` (taken over) or `broken` (`--break-lease`).
    pub how: &'static str,
    #[serde(flatten)]
    pub lease: Lease,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        match &self.lease {
            Some(LeaseNote { how: "broken", lease }) => writeln!(f, "  broke the lease of {lease} (--break-lease)"),
            Some(LeaseNote { lease, .. }) => writeln!(f, "  took over the expired lease of {lease}"),
            None => Ok(()),
        }
    }
}

/// The evidence `--promote` weighs: the report's default window (its error message says 24 hours).
const PROMOTE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Set once Ctrl-C arrives; the rollout stops at the next boundary between API calls.
struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Installs the handler before the first write, so Ctrl-C never kills the process in the middle of a call.
    fn install() -> Interrupt {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        Interrupt(rx)
    }

    fn fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps `d`; `false` when Ctrl-C cut it short.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            // A closed channel (no handler could be installed) never interrupts.
            Ok(_) = self.0.wait_for(|v| *v) => false,
        }
    }
}

/// What the command needs to run a plan, resolved from flags, config and state.
struct Run<'a> {
    aws: &'a Aws,
    printer: &'a Printer,
    config: &'a Config,
    target: Target,
    state_dir: std::path::PathBuf,
    /// `--steps` as the user gave them (for the resume hint).
    steps_flag: String,
    /// Who this rollout acts as (`settings::operator`).
    me: String,
}

/// A partial step being watched: the routing it holds, the description it was written with, when it began and
/// how much of its window is left.
struct Watched<'a> {
    held: AliasRouting,
    description: &'a str,
    began: SystemTime,
    left: Duration,
}

fn facts(v: &FunctionInfo) -> VersionFacts {
    VersionFacts { version: v.version.clone(), role: v.role.clone(), dead_letter: v.dead_letter.clone() }
}

fn steps_flag(s: &Steps) -> String {
    s.weights().iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &RolloutSettings) -> Result<Report> {
    let config = p.config();
    let aws = ctx.aws().await?;
    let (alias, versions) = read_alias(&aws, config).await?;
    let record = AliasRecord::parse(&alias.description);
    let lease = check_lease(ctx.printer, config, &record, s)?;
    let plan = plan(ctx, p, s, &alias, &versions)?;
    check_backtest(ctx.printer, &ledger::load(&aws, config, &p.state_dir, ctx.printer).await?, &plan, s)?;
    if s.dry_run {
        return Ok(Report::new(Outcome { dry_run: true, plan, lease }, true));
    }
    let run = Run {
        aws: &aws,
        printer: ctx.printer,
        config,
        target: ctx.target(),
        state_dir: p.state_dir.clone(),
        steps_flag: match &s.action {
            RolloutAction::Steps { steps, .. } => steps_flag(steps),
            _ => String::new(),
        },
        me: s.operator.clone(),
    };
    let mut revision = alias.revision_id.clone();
    let leased = plan.action == Action::Steps && plan.steps.iter().any(|st| !st.promotes());
    if leased {
        revision = run.take_lease(&plan, &record, &revision).await?;
    }
    let ran = async {
        run.plan_looks(&plan, &s.action).await?;
        if let (Action::Steps, Some(candidate)) = (plan.action, plan.candidate) {
            let model =
                versions.iter().find(|v| v.version == candidate.to_string()).and_then(FunctionInfo::model_version);
            run.ensure_candidate_alarms(&candidate.to_string(), model).await?;
        }
        if plan.action == Action::Promote {
            run.check_promote(&plan, &alias, s.force).await?;
        }
        if let (Some(first), Some(candidate)) = (s.shadow_first, plan.candidate) {
            run.shadow_first(&alias.primary, &candidate.to_string(), first, s.force).await?;
        }
        run.execute(&plan, &alias, revision).await
    }
    .await;
    // however the rollout stopped (Ctrl-C, a shadow's verdict, an alarm, a failed call), the lease goes back
    if ran.is_err() && leased {
        run.release_lease().await;
    }
    ran?;
    Ok(Report::done(Outcome { dry_run: false, plan, lease }))
}

/// Refuses to move an alias whose lease another operator holds (exit 2, naming the holder and the expiry),
/// unless `--break-lease`; an expired lease is a crashed rollout's, and is taken over. Checked before a dry run
/// too, so the dry run says what the real one would do.
fn check_lease(
    printer: &Printer,
    config: &Config,
    record: &AliasRecord,
    s: &RolloutSettings,
) -> Result<Option<LeaseNote>> {
    let (function, alias) = (&config.function.name, &config.function.alias);
    let now = SystemTime::now();
    let check = record::check_lease(record, &s.operator, now, s.break_lease).map_err(|_| {
        Error::user(format!(
            "`--break-lease`: alias `{alias}` of `{function}` has no live lease of another operator to break"
        ))
        .help("run the command without `--break-lease`; `mlambda status` shows the alias's lease")
    })?;
    match check {
        LeaseCheck::Free => Ok(None),
        LeaseCheck::Expired(lease) => {
            printer.status(format!(
                "taking over the expired lease of {lease} (that rollout stopped without giving it back)"
            ));
            Ok(Some(LeaseNote { how: "expired", lease }))
        }
        LeaseCheck::Broken(lease) => {
            printer.warn(format!("breaking the lease of {lease} (--break-lease): that rollout stops at its next step"));
            Ok(Some(LeaseNote { how: "broken", lease }))
        }
        LeaseCheck::Held(lease) => {
            let left = lease.until.duration_since(now).unwrap_or_default();
            let step = record.step.as_ref().map_or(String::new(), |st| {
                format!(", which has version {} at {}", st.candidate, crate::plan::alias::Percent(st.weight))
            });
            Err(Error::cloud(format!(
                "alias `{alias}` of `{function}` is leased by {} until {} ({} from now): a stepped rollout is moving it{step}",
                lease.owner,
                humantime::format_rfc3339_seconds(lease.until),
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ))
            .help(
                "wait for that rollout to finish (`mlambda status` shows it); if it crashed, its lease expires by \
                 itself, or pass `--break-lease` to take the alias over now",
            ))
        }
    }
}

/// Refuses to send traffic (`--weight`, `--steps`, `--preset`) to a candidate whose recorded backtest verdict
/// (`report --batch`) or shadow verdict (`report --shadow`) is rollback, unless `--force`: the evidence showed
/// it worse before any user saw it. Checked before a dry run too, so the dry run says what the real one would do.
fn check_backtest(printer: &Printer, st: &state::State, plan: &RolloutPlan, s: &RolloutSettings) -> Result<()> {
    if !matches!(s.action, RolloutAction::Weight(_) | RolloutAction::Steps { .. }) {
        return Ok(());
    }
    let Some(candidate) = plan.candidate.map(|c| c.to_string()) else { return Ok(()) };
    let backtest = st.backtests.get(&candidate).filter(|b| b.verdict == Decision::Rollback);
    let shadow = st.shadow_verdicts.get(&candidate).filter(|v| v.verdict == Decision::Rollback);
    // what said rollback, and the report that shows it again
    let mut said = Vec::new();
    let mut see = Vec::new();
    if let Some(b) = backtest {
        said.push(format!(
            "its backtest against version {} ({}) says rollback: {}",
            b.baseline,
            b.time,
            b.reasons.join("; ")
        ));
        let runs: Vec<String> = b.runs.iter().map(|r| format!("--batch {r}")).collect();
        see.push(format!("`mlambda report {} --outcomes FILE`", runs.join(" ")));
    }
    if let Some(v) = shadow {
        said.push(format!(
            "its shadow report against version {} ({} pairs, {} → {}, computed {}) says rollback: {}",
            v.baseline,
            v.pairs,
            v.since,
            v.until,
            v.time,
            v.reasons.join("; ")
        ));
        let outcomes = if v.outcomes { " --outcomes FILE" } else { "" };
        see.push(format!(
            "`mlambda report --shadow --candidate {candidate} --since {} --until {}{outcomes}`",
            v.since, v.until
        ));
    }
    if said.is_empty() {
        return Ok(());
    }
    let said = said.join("; and ");
    if s.force {
        printer.warn(format!("sending traffic to version {candidate} over a rollback verdict (--force): {said}"));
        return Ok(());
    }
    Err(Error::user(format!("refusing to send traffic to version {candidate}: {said}")).help(format!(
        "see the evidence with {}, and deploy a better model; to send it traffic anyway, pass `--force`",
        see.join(" and ")
    )))
}

/// The alias as Lambda holds it and the published versions, oldest first.
async fn read_alias(aws: &Aws, config: &Config) -> Result<(Alias, Vec<FunctionInfo>)> {
    let (function, alias_name) = (config.function.name.as_str(), config.function.alias.as_str());
    let alias = lambda::get_alias(aws, function, alias_name).await?.ok_or_else(|| {
        Error::user(format!("alias `{alias_name}` of function `{function}` does not exist"))
            .help("run `mlambda deploy` first; it publishes a version and creates the alias")
    })?;
    Ok((alias, lambda::list_versions(aws, function).await?))
}

/// The settings' action as a plan over what the alias holds now.
fn plan(
    ctx: &Ctx<'_>,
    p: &Project,
    s: &RolloutSettings,
    alias: &Alias,
    versions: &[FunctionInfo],
) -> Result<RolloutPlan> {
    let config = p.config();
    let st = ctx.state(p)?;
    let version_facts: Vec<VersionFacts> = versions.iter().map(facts).collect();
    let current = Current {
        primary: alias.primary.clone(),
        routing: alias.routing.clone(),
        description: alias.description.clone(),
    };
    let inputs = Inputs {
        function: &config.function.name,
        alias: &config.function.alias,
        current: &current,
        versions: &version_facts,
        version: s.version,
        state_previous: st.rollout.as_ref().and_then(|r| r.previous_primary),
    };
    match &s.action {
        RolloutAction::Weight(w) => rollout::weight(&inputs, *w),
        RolloutAction::Steps { steps, interval } => rollout::steps(&inputs, steps, *interval),
        RolloutAction::Promote => rollout::promote(&inputs),
        RolloutAction::Rollback => rollout::rollback(&inputs),
    }
}

impl Run<'_> {
    fn function(&self) -> &str {
        &self.config.function.name
    }

    fn alias(&self) -> &str {
        &self.config.function.alias
    }

    /// Creates the candidate's alarms when they are missing, so every step of the rollout is guarded.
    async fn ensure_candidate_alarms(&self, candidate: &str, model: Option<String>) -> Result<()> {
        let routed = [Routed { version: candidate.to_string(), model_version: model }];
        let prefix = alarms::version_prefix(self.function(), candidate);
        let specs: Vec<_> = alarms::specs(self.function(), self.alias(), None, &routed, &self.config.alarms)?
            .into_iter()
            .filter(|s| s.name.starts_with(&prefix))
            .collect();
        let existing = cloudwatch::describe_alarms(self.aws, &prefix).await?;
        let changes = alarms::diff(&specs, &existing);
        let mut made = 0;
        for spec in changes.iter().filter_map(AlarmChange::to_put) {
            cloudwatch::put_metric_alarm(self.aws, spec).await?;
            made += 1;
        }
        if made > 0 {
            self.printer.status(format!("put {made} alarms guarding version {candidate}"));
        }
        Ok(())
    }

    /// Records how many looks at the candidate's evidence the rollout plans, keeping the looks already taken, so
    /// a resumed or re-weighted rollout goes on spending the same α.
    async fn plan_looks(&self, plan: &RolloutPlan, action: &RolloutAction) -> Result<()> {
        let planned = match action {
            RolloutAction::Steps { steps, .. } => steps.looks(),
            RolloutAction::Weight(_) => 1,
            RolloutAction::Promote | RolloutAction::Rollback => return Ok(()),
        };
        let Some(candidate) = plan.candidate else { return Ok(()) };
        self.update(|s| {
            let r = s.rollout.get_or_insert_with(Default::default);
            let held = r.looks.as_ref().filter(|l| l.candidate == candidate);
            let (taken, before) = held.map_or((0, 0), |l| (l.taken, l.planned));
            r.looks = Some(state::Looks { candidate, planned: planned.max(before), taken });
        })
        .await?;
        Ok(())
    }

    /// Updates the state every operator shares (`ledger`) and this machine's cache.
    async fn update(&self, f: impl Fn(&mut state::State)) -> Result<state::State> {
        ledger::update(self.aws, self.config, &self.state_dir, self.printer, f).await
    }

    /// Writes one step, conditioned on `revision`; the description carries the plan's previous primary, and,
    /// while the candidate holds a partial weight, when this step began and (in a stepped rollout) the lease.
    async fn write(&self, plan: &RolloutPlan, step: &Step, revision: &str) -> Result<String> {
        let description = self.describe(plan, step, SystemTime::now());
        let w = AliasWrite {
            function: self.function(),
            alias: self.alias(),
            routing: step.target,
            description: &description,
            revision_id: Some(revision).filter(|r| !r.is_empty()),
        };
        match lambda::update_alias(self.aws, &w).await? {
            Written::Done(a) => Ok(a.revision_id),
            Written::Stale => Err(self.stale().await),
        }
    }

    fn describe(&self, plan: &RolloutPlan, step: &Step, now: SystemTime) -> String {
        let mut r = AliasRecord::parse(&step.description);
        r.lease = None;
        r.step = None;
        if let (Some(candidate), Some((_, weight))) = (plan.candidate, step.target.additional) {
            let stepped = plan.action == Action::Steps;
            let every = plan.interval_secs.map(Duration::from_secs).filter(|_| stepped);
            let steps = if stepped {
                plan.skipped.iter().copied().chain(plan.steps.iter().map(Step::weight)).collect()
            } else {
                vec![]
            };
            r.step = Some(StepRecord {
                candidate,
                weight: weight.get(),
                since: now,
                steps,
                every,
                by: record::owner(&self.me),
            });
            if stepped {
                r.lease = Some(self.lease(now, every.unwrap_or_default()));
            }
        }
        r.render()
    }

    /// This operator's lease, taken or renewed `now` for a step's `window`.
    fn lease(&self, now: SystemTime, window: Duration) -> Lease {
        Lease { owner: record::owner(&self.me), until: record::lease_until(now, window) }
    }

    /// Takes the alias's lease for a stepped rollout before anything else moves: a description-only write under
    /// the `RevisionId` the plan was made from, so of two rollouts started at once exactly one gets it.
    async fn take_lease(&self, plan: &RolloutPlan, record: &AliasRecord, revision: &str) -> Result<String> {
        let mut r = record.clone();
        r.lease = Some(self.lease(SystemTime::now(), Duration::from_secs(plan.interval_secs.unwrap_or(0))));
        match lambda::update_alias_description(self.aws, self.function(), self.alias(), &r.render(), revision).await? {
            Written::Done(a) => {
                self.printer.status(format!("took the lease of alias `{}` as {}", self.alias(), self.me));
                Ok(a.revision_id)
            }
            Written::Stale => Err(self.stale().await),
        }
    }

    /// Gives the lease back when a rollout stops early (Ctrl-C, a failure), keeping the step's record so a
    /// resume waits out its window. Only this operator's own lease, under the revision just read; a failure is
    /// only a warning: the lease expires by itself.
    async fn release_lease(&self) {
        let released = async {
            let Some(alias) = lambda::get_alias(self.aws, self.function(), self.alias()).await? else { return Ok(()) };
            let mut r = AliasRecord::parse(&alias.description);
            if r.lease.as_ref().is_none_or(|l| l.owner != record::owner(&self.me)) {
                return Ok(());
            }
            r.lease = None;
            let (function, name) = (self.function(), self.alias());
            lambda::update_alias_description(self.aws, function, name, &r.render(), &alias.revision_id).await?;
            Ok::<(), Error>(())
        };
        if let Err(e) = released.await {
            self.printer.warn(format!("could not give the alias's lease back ({}); it expires by itself", e.message));
        }
    }

    /// The error for a write Lambda refused because the alias changed since it was read: who changed it (from
    /// the record they left), what it holds now, and to plan again. Never retried: the plan is stale.
    async fn stale(&self) -> Error {
        let (function, alias) = (self.function(), self.alias());
        let now = match lambda::get_alias(self.aws, function, alias).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return Error::cloud(format!("alias `{alias}` of `{function}` was deleted while mlambda was updating it"))
                    .help("nothing was changed by mlambda; run `mlambda deploy` to create it, then re-run to plan again")
            }
            Err(e) => {
                return Error::cloud(format!(
                    "alias `{alias}` of `{function}` was changed by someone else while mlambda was updating it, and reading it again failed: {}",
                    e.message
                ))
                .help("nothing was changed by mlambda; run `mlambda status`, then re-run to plan again")
            }
        };
        let r = AliasRecord::parse(&now.description);
        let who = match (&r.lease, &r.step) {
            (Some(l), _) if l.live(SystemTime::now()) => {
                format!("by {} (who holds its lease until {})", l.owner, humantime::format_rfc3339_seconds(l.until))
            }
            (_, Some(st)) if !st.by.is_empty() => {
                format!("by {} (its last recorded step, at {})", st.by, humantime::format_rfc3339_seconds(st.since))
            }
            _ => "by another tool or person (it left no mlambda record)".to_string(),
        };
        Error::cloud(format!(
            "alias `{alias}` of `{function}` was changed {who} after mlambda read it; it now routes {}",
            crate::plan::alias::render(&now.primary, &now.routing)
        ))
        .help("nothing was changed by this write; re-run to plan again from what the alias holds now (`mlambda status` shows it)")
    }

    async fn record(&self, plan: &RolloutPlan, step: &Step) -> Result<()> {
        self.update(|s| {
            let r = s.rollout.get_or_insert_with(Default::default);
            match (plan.action, step.promotes()) {
                (Action::Rollback, _) => {
                    r.candidate = None;
                    r.weight = None;
                    r.looks = None;
                    // Going back to the recorded primary uses the record up.
                    if step.target.primary.to_string() != plan.from_primary {
                        r.previous_primary = None;
                    }
                }
                (_, true) => {
                    r.previous_primary = plan.previous_primary;
                    r.candidate = None;
                    r.weight = None;
                    r.looks = None;
                }
                (_, false) => {
                    r.candidate = plan.candidate;
                    r.weight = step.target.additional.map(|(_, w)| w);
                }
            }
        })
        .await?;
        Ok(())
    }

    async fn execute(&self, plan: &RolloutPlan, alias: &Alias, revision: String) -> Result<()> {
        let mut stop = Interrupt::install();
        let mut revision = revision;
        let mut at = plan.from.clone();
        let interval = Duration::from_secs(plan.interval_secs.unwrap_or(0));
        if let Some(step) = self.resumed_step(plan, alias) {
            self.watch(plan, &step, &revision, &mut stop, &at).await?;
        }
        for (i, step) in plan.steps.iter().enumerate() {
            if stop.fired() {
                return Err(self.interrupted(plan, &at));
            }
            revision = self.write(plan, step, &revision).await?;
            at = step.routing();
            self.record(plan, step).await?;
            self.printer.status(format!("{}: {at}", self.alias()));
            if plan.action != Action::Steps || step.promotes() {
                continue;
            }
            self.printer.status(format!(
                "step {}/{}: watching the alarms of version {} for {}",
                i + 1,
                plan.steps.len(),
                plan.candidate.map(|c| c.to_string()).unwrap_or_default(),
                humantime::format_duration(interval)
            ));
            let watched =
                Watched { held: step.target, description: &step.description, began: SystemTime::now(), left: interval };
            self.watch(plan, &watched, &revision, &mut stop, &at).await?;
        }
        // steps ending below 1 leave the candidate weighted for a later --promote: nobody holds the alias then
        if plan.action == Action::Steps && plan.steps.last().is_some_and(|s| !s.promotes()) {
            self.release_lease().await;
        }
        Ok(())
    }

    /// A resumed stepped rollout (the candidate already holds a partial weight): the step it stopped in, with
    /// what is left of its window, measured from the start the alias records.
    fn resumed_step<'p>(&self, plan: &'p RolloutPlan, alias: &Alias) -> Option<Watched<'p>> {
        let candidate = plan.candidate?;
        let weight = *alias.routing.get(&candidate.to_string())?;
        let first = plan.steps.first()?;
        if plan.action != Action::Steps || plan.skipped.is_empty() {
            return None;
        }
        let window = Duration::from_secs(plan.interval_secs.unwrap_or(0));
        let now = SystemTime::now();
        let (left, since) =
            record::window_left(&AliasRecord::parse(&alias.description), candidate, weight, window, now);
        let when = since.map_or("no recorded start, so a whole window".to_string(), |t| {
            format!("since {}", humantime::format_rfc3339_seconds(t))
        });
        self.printer.status(format!(
            "resuming: version {candidate} has had {} of the traffic ({when}); watching its alarms for the {} left of the step's window",
            crate::plan::alias::Percent(weight),
            humantime::format_duration(Duration::from_secs(left.as_secs()))
        ));
        let held =
            AliasRouting { primary: first.target.primary, additional: Some((candidate, Weight::new(weight).ok()?)) };
        Some(Watched { held, description: &first.description, began: since.unwrap_or(now), left })
    }

    /// Waits out a partial step's window, then checks the candidate's alarms and the report's verdict since the
    /// step began; either saying so rolls the alias back.
    async fn watch(
        &self,
        plan: &RolloutPlan,
        w: &Watched<'_>,
        revision: &str,
        stop: &mut Interrupt,
        at: &str,
    ) -> Result<()> {
        if !stop.sleep(w.left).await {
            return Err(self.interrupted(plan, at));
        }
        let candidate = plan.candidate.map(|c| c.to_string()).unwrap_or_default();
        if let Some(alarm) = self.firing(&candidate).await? {
            let why = format!("alarm `{}` of version {candidate} is in ALARM: {}", alarm.spec.name, alarm.reason);
            return Err(self.roll_back(plan, w, revision, why).await);
        }
        let share = w.held.additional.map(|(_, weight)| weight.get());
        let report = self.verdict(&w.held.primary.to_string(), &candidate, share, w.began).await;
        if let Some(r) = report.filter(|r| r.verdict == Decision::Rollback) {
            let why = format!("the report's verdict on version {candidate} is rollback: {}", r.reasons.join("; "));
            return Err(self.roll_back(plan, w, revision, why).await);
        }
        Ok(())
    }

    /// The first of the candidate's alarms in ALARM; alarms on other versions never stop its rollout.
    async fn firing(&self, candidate: &str) -> Result<Option<Alarm>> {
        let prefix = alarms::version_prefix(self.function(), candidate);
        let all = cloudwatch::describe_alarms(self.aws, &prefix).await?;
        if all.is_empty() {
            self.printer
                .warn(format!("version {candidate} has no alarms, so this step is not guarded; run `mlambda alarms`"));
        }
        Ok(all.into_iter().find(|a| a.state == AlarmState::Alarm))
    }

    /// The report's evidence on `candidate` against `baseline` since `since`, as the rollout's next look at it
    /// (which spends that look's α), recorded for `status`. Reading it failing is a warning: only alarms and a
    /// `rollback` verdict stop a rollout.
    async fn verdict(
        &self,
        baseline: &str,
        candidate: &str,
        traffic_share: Option<f64>,
        since: SystemTime,
    ) -> Option<crate::plan::report::Report> {
        let look = match ledger::load(self.aws, self.config, &self.state_dir, self.printer).await {
            Ok(s) => s.rollout.unwrap_or_default().next_look(candidate),
            Err(e) => {
                self.printer.warn(format!("could not read the looks taken so far: {e}"));
                Look::ONLY
            }
        };
        let req = gather::Request {
            baseline: baseline.to_string(),
            candidate: candidate.to_string(),
            traffic_share,
            since,
            until: SystemTime::now(),
            outcomes: None,
            look,
        };
        match gather::evidence(self.aws, &self.target, self.printer, self.config, req).await {
            Ok(r) => {
                let recorded = self
                    .update(|s| {
                        if let Some(rollout) = s.rollout.as_mut() {
                            rollout.take_look(candidate);
                        }
                        s.verdict = Some(gather::last_verdict(&r));
                    })
                    .await;
                if let Err(e) = recorded {
                    self.printer.warn(format!("could not record the verdict: {e}"));
                }
                self.printer.status(format!(
                    "verdict on version {candidate} (look {} of {}, α {:.4}): {}",
                    r.look.index,
                    r.look.planned,
                    r.look.alpha,
                    r.verdict.as_str()
                ));
                Some(r)
            }
            Err(e) => {
                self.printer
                    .warn(format!("could not compute the report's verdict on version {candidate}: {}", e.message));
                None
            }
        }
    }

    /// `--promote` over the report's verdict of the last day: refused on `rollback` unless forced, warned on
    /// `continue`.
    async fn check_promote(&self, plan: &RolloutPlan, alias: &Alias, force: bool) -> Result<()> {
        let Some(candidate) = plan.candidate.map(|c| c.to_string()).filter(|c| *c != plan.from_primary) else {
            return Ok(());
        };
        let share = alias.routing.get(&candidate).copied();
        let since = SystemTime::now() - PROMOTE_WINDOW;
        let Some(r) = self.verdict(&plan.from_primary, &candidate, share, since).await else {
            return Ok(());
        };
        match r.verdict {
            Decision::Rollback if force => {
                self.printer.warn(format!(
                    "promoting version {candidate} over a rollback verdict (--force): {}",
                    r.reasons.join("; ")
                ));
                Ok(())
            }
            Decision::Rollback => Err(Error::user(format!(
                "refusing to promote version {candidate}: the report's verdict over the last 24 hours is rollback: {}",
                r.reasons.join("; ")
            ))
            .help(
                "run `mlambda report` to see the evidence, then `mlambda rollout --rollback`; \
                 to promote anyway, pass `--promote --force`",
            )),
            Decision::Continue => {
                self.printer.warn(format!(
                    "the report cannot tell yet whether version {candidate} is better (verdict: continue); promoting anyway"
                ));
                Ok(())
            }
            Decision::Promote => Ok(()),
        }
    }

    async fn roll_back(&self, plan: &RolloutPlan, w: &Watched<'_>, revision: &str, why: String) -> Error {
        let candidate = plan.candidate.map(|c| c.to_string()).unwrap_or_default();
        let back = Step { target: AliasRouting::all(w.held.primary), description: w.description.to_string() };
        match self.write(plan, &back, revision).await {
            Ok(_) => {
                let cleared = self
                    .update(|s| {
                        if let Some(r) = s.rollout.as_mut() {
                            r.candidate = None;
                            r.weight = None;
                            r.looks = None;
                        }
                    })
                    .await;
                if let Err(e) = cleared {
                    self.printer.warn(format!("could not record the rollback: {}", e.message));
                }
                Error::cloud(format!("{why}; rolled back: {}: {}", self.alias(), back.routing())).help(format!(
                    "version {candidate} gets no traffic now; look at its logs and metrics, fix it and deploy a new version"
                ))
            }
            Err(e) => Error::cloud(format!("{why}; rolling back failed too: {}", e.message))
                .help("run `mlambda rollout --rollback` now to send all traffic to the primary"),
        }
    }

    /// The shadow phase of `shadow-then-canary` (or `--shadow-first`): the candidate answers copies of the
    /// primary's requests for the window, then the shadow stops and its verdict decides whether any live weight
    /// follows. A `rollback` verdict ends the rollout before the alias changes (unless `--force`); a window with
    /// no copies (no traffic) leaves the decision to the canary's own gates.
    async fn shadow_first(&self, primary: &str, candidate: &str, first: ShadowFirst, force: bool) -> Result<()> {
        let function = self.function();
        // the control outlives the window by a margin, so a rollout killed mid-window still stops copying
        let planned = shadowing::prepare(self.aws, self.config, candidate, first.sample, first.window * 2).await?;
        shadowing::start(self.aws, &planned).await?;
        let began = SystemTime::now();
        self.printer.status(format!(
            "shadowing: version {primary} copies {:.0}% of its requests to version {candidate} for {}, before any live weight",
            first.sample * 100.0,
            humantime::format_duration(first.window)
        ));
        let mut stop = Interrupt::install();
        let completed = stop.sleep(first.window).await;
        let bucket = shadowing::control_location(self.aws, self.config).await?;
        shadowing::stop(self.aws, function, &bucket, false).await?;
        if !completed {
            return Err(Error::user(format!(
                "rollout interrupted during the shadow of version {candidate}: the shadow is stopped, the alias unchanged"
            ))
            .help("run the same command again to shadow again, or skip the shadow with `mlambda rollout --steps …`"));
        }
        let window = (began, SystemTime::now());
        let who = (Some(primary.to_string()), Some(candidate.to_string()));
        let report = match gather::shadow(&self.target, self.printer, self.config, window, None, who).await {
            Ok(r) => r,
            Err(e) if e.exit_code() == 1 => {
                self.printer.warn(format!("no shadow evidence ({}): the canary's own checks decide", e.message));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        gather::record_shadow(self.aws, self.config, &self.state_dir, self.printer, &report).await?;
        self.printer.status(format!(
            "shadow of version {candidate}: {} pairs, agreement {:.1}%, verdict {}",
            report.pairs,
            report.agreement.unwrap_or(f64::NAN) * 100.0,
            report.verdict.as_str()
        ));
        if report.verdict != Decision::Rollback {
            return Ok(());
        }
        let reasons = report.reasons.join("; ");
        if force {
            self.printer.warn(format!("going on over the shadow's rollback verdict (--force): {reasons}"));
            return Ok(());
        }
        Err(Error::cloud(format!(
            "the shadow's verdict on version {candidate} is rollback, so no live traffic was shifted: {reasons}"
        ))
        .help("`mlambda report --shadow` shows the evidence; deploy a better model, or pass `--force` to go on"))
    }

    fn interrupted(&self, plan: &RolloutPlan, at: &str) -> Error {
        let every = humantime::format_duration(Duration::from_secs(plan.interval_secs.unwrap_or(0)));
        Error::user(format!("rollout interrupted: alias `{}` stays at {at}, which is a valid routing", self.alias()))
            .help(format!(
                "resume with `mlambda rollout --steps {} --interval {every}` (steps up to the current weight are skipped), \
                 or send everything back to the primary with `mlambda rollout --rollback`",
                self.steps_flag
            ))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::error::ErrorMetadata;
    use aws_sdk_lambda::operation::update_alias::{UpdateAliasError, UpdateAliasOutput};
    use aws_sdk_lambda::types::error::PreconditionFailedException;
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock;
    use crate::domain::Version;
    use crate::plan::alias::AliasRouting;

    const CONFIG: &str = "function:\n  name: churn\nimage:\n  repository: churn\nmodel:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: b\n  features: [a]\n";

    fn step(primary: u64, candidate: u64, weight: f64) -> Step {
        let target = AliasRouting {
            primary: Version::parse(&primary.to_string()).unwrap(),
            additional: Some((
                Version::parse(&candidate.to_string()).unwrap(),
                crate::domain::Weight::new(weight).unwrap(),
            )),
        };
        Step { target, description: String::new() }
    }

    /// moto (patched in `scripts/moto-server`) refuses a stale `RevisionId` too, and `tests/it/lease.rs` races
    /// two rollouts there; this pins the exact request and the message from who changed the alias.
    #[tokio::test]
    async fn a_write_carries_the_revision_and_a_stale_one_names_who_changed_the_alias() {
        let config = crate::config::parse(CONFIG, std::path::Path::new("mlambda.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let printer = Printer::new(crate::cli::OutputFormat::Text, true, 0);
        let ok = mock!(Client::update_alias)
            .match_requests(|r| {
                r.revision_id() == Some("rev-1")
                    && r.description().is_some_and(|d| d.contains("mlambda: rollout=4 at=0.1 since="))
                    && r.description().is_some_and(|d| d.contains("mlambda: lease=alice@box:1 until="))
            })
            .then_output(|| UpdateAliasOutput::builder().revision_id("rev-2").build());
        let stale = mock!(Client::update_alias).match_requests(|r| r.revision_id() == Some("rev-0")).then_error(|| {
            UpdateAliasError::PreconditionFailedException(
                PreconditionFailedException::builder()
                    .message("The RevisionId provided does not match the latest RevisionId")
                    .meta(ErrorMetadata::builder().code("PreconditionFailedException").build())
                    .build(),
            )
        });
        let until = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(600));
        let now = mock!(Client::get_alias).then_output(move || {
            aws_sdk_lambda::operation::get_alias::GetAliasOutput::builder()
                .function_version("3")
                .description(format!("mlambda: lease=bob@ci:7 until={until}"))
                .revision_id("rev-9")
                .build()
        });
        let aws = mock::aws(&[&ok, &stale, &now], &[]);
        let run = Run {
            aws: &aws,
            printer: &printer,
            config: &config,
            target: Target { profile: None, region: None },
            state_dir: dir.path().into(),
            steps_flag: String::new(),
            me: "alice@box:1".into(),
        };
        let (mut plan, _) = weight_plan("4");
        plan.action = Action::Steps;
        plan.interval_secs = Some(20);
        assert_eq!(run.write(&plan, &step(3, 4, 0.1), "rev-1").await.unwrap(), "rev-2");
        let e = run.write(&plan, &step(3, 4, 0.1), "rev-0").await.unwrap_err();
        assert!(
            e.message.contains("alias `production` of `churn` was changed by bob@ci:7 (who holds its lease until"),
            "{}",
            e.message
        );
        assert!(e.message.contains("it now routes 3 100%"), "{}", e.message);
        assert!(e.help.as_deref().unwrap_or("").contains("re-run to plan again"));
        assert_eq!(e.exit_code(), 2);
        assert_eq!((ok.num_calls(), stale.num_calls(), now.num_calls()), (1, 1, 1));
    }

    fn weight_plan(candidate: &str) -> (RolloutPlan, RolloutSettings) {
        let plan = RolloutPlan {
            function: "churn".into(),
            alias: "production".into(),
            action: Action::Weight,
            candidate: Some(Version::parse(candidate).unwrap()),
            from: "1 100%".into(),
            from_primary: "1".into(),
            to: format!("1 90% · {candidate} 10%"),
            steps: vec![],
            skipped: vec![],
            interval_secs: None,
            previous_primary: None,
        };
        let s = RolloutSettings {
            action: RolloutAction::Weight(crate::domain::Weight::TEN_PERCENT),
            version: None,
            force: false,
            dry_run: false,
            shadow_first: None,
            break_lease: false,
            operator: "alice@box:1".into(),
        };
        (plan, s)
    }

    #[test]
    fn a_shadow_rollback_refuses_traffic_naming_the_shadow_report_and_force() {
        let printer = Printer::new(crate::cli::OutputFormat::Text, true, 0);
        let mut st = state::State::default();
        let shadow = |verdict| state::ShadowVerdict {
            verdict,
            baseline: "1".into(),
            since: "2026-12-01T09:00:00Z".into(),
            until: "2026-12-02T09:00:00Z".into(),
            pairs: 3000,
            outcomes: true,
            time: "2026-12-02T09:00:05Z".into(),
            reasons: vec!["candidate 2 is worse by more than the margin: AUC 0.6776 vs 0.8010".into()],
        };
        st.shadow_verdicts.insert("2".into(), shadow(Decision::Rollback));
        st.shadow_verdicts.insert("3".into(), shadow(Decision::Promote));
        let (plan, mut s) = weight_plan("2");
        let e = check_backtest(&printer, &st, &plan, &s).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message.contains("refusing to send traffic to version 2: its shadow report against version 1"));
        assert!(e.message.contains("3000 pairs") && e.message.contains("AUC 0.6776 vs 0.8010"), "{}", e.message);
        let help = e.help.unwrap();
        assert!(help.contains("`mlambda report --shadow --candidate 2 --since 2026-12-01T09:00:00Z"), "{help}");
        assert!(help.contains("--outcomes FILE`") && help.contains("pass `--force`"), "{help}");
        // a backtest saying rollback as well: both are named
        st.backtests.insert(
            "2".into(),
            state::Backtest {
                verdict: Decision::Rollback,
                baseline: "1".into(),
                runs: vec!["s3://b/r1/".into(), "s3://b/r2/".into()],
                time: "2026-12-01T08:00:00Z".into(),
                reasons: vec!["worse".into()],
            },
        );
        let e = check_backtest(&printer, &st, &plan, &s).unwrap_err();
        assert!(e.message.contains("its backtest against version 1") && e.message.contains("and its shadow report"));
        s.force = true;
        assert!(check_backtest(&printer, &st, &plan, &s).is_ok(), "--force overrides");
        let (plan, s) = weight_plan("3");
        assert!(check_backtest(&printer, &st, &plan, &s).is_ok(), "a promote verdict lets traffic through");
    }
}
