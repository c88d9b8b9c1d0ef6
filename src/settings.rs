//! Resolves flags > `MLAMBDA_*` environment > mlambda.yaml into one settings value per command, in one place.
//!
//! clap already folded the environment variables it owns (`MLAMBDA_CONFIG`, `MLAMBDA_RUNTIME`) into the flags;
//! what is left here is the rest of the precedence and the defaults that come from the project file.
use std::path::PathBuf;

use crate::cli::{
    AlarmsArgs, BuildArgs, DeployArgs, InvokeArgs, ModelPushArgs, PruneArgs, PushArgs, RolloutArgs, UpArgs, WarmArgs,
};
use crate::config::Loaded;
use crate::domain::{Duration, ModelVersion, RolloutStrategy, Version, Weight};
use crate::error::{Error, Result};
use crate::plan::rollout::Steps;

/// A loaded project: mlambda.yaml and where its state lives.
#[derive(Debug, Clone)]
pub struct Project {
    pub loaded: Loaded,
    /// `.mlambda/` beside the config file.
    pub state_dir: PathBuf,
}

impl Project {
    pub fn new(loaded: Loaded) -> Project {
        let state_dir = loaded.dir.join(".mlambda");
        Project { loaded, state_dir }
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.loaded.config
    }

    /// The model version a command works on: its flag, else `model.version`.
    pub fn model_version(&self, flag: Option<&ModelVersion>) -> ModelVersion {
        flag.cloned().unwrap_or_else(|| self.loaded.config.model.version.clone())
    }

    /// The model file `model.path` names, relative to mlambda.yaml.
    pub fn model_path(&self) -> PathBuf {
        self.loaded.resolve(&self.loaded.config.model.path)
    }
}

/// `mlambda build`.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// `--runtime` (or `MLAMBDA_RUNTIME`); `None` builds `bootstrap` from the workspace.
    pub runtime: Option<PathBuf>,
    /// `--tag`, else `image.tag`; `None` derives `<model version>-<content hash>`.
    pub tag: Option<String>,
    pub model_version: ModelVersion,
    pub model_path: PathBuf,
    pub dry_run: bool,
}

impl BuildSettings {
    pub fn resolve(args: &BuildArgs, p: &Project) -> BuildSettings {
        BuildSettings {
            runtime: args.runtime.clone(),
            tag: args.tag.clone().or_else(|| p.config().image.tag.clone()),
            model_version: p.model_version(None),
            model_path: p.model_path(),
            dry_run: args.dry.dry_run,
        }
    }
}

/// `mlambda push`.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// `MLAMBDA_REGISTRY`, then `image.registry`; `None` means the ECR endpoint from the authorization token.
    pub registry: Option<String>,
    /// A zip package's missing bucket is created.
    pub create_bucket: bool,
    pub dry_run: bool,
}

impl PushSettings {
    pub fn resolve(args: &PushArgs, p: &Project) -> PushSettings {
        let registry = std::env::var("MLAMBDA_REGISTRY")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| p.config().image.registry.clone());
        PushSettings { registry, create_bucket: args.create_bucket, dry_run: args.dry.dry_run }
    }
}

/// `mlambda model push`.
#[derive(Debug, Clone)]
pub struct ModelPushSettings {
    /// The ONNX file: the argument, else `model.path`.
    pub path: PathBuf,
    pub version: ModelVersion,
    /// `--reference`, else `model.reference`.
    pub reference: Option<PathBuf>,
    pub create_bucket: bool,
    pub dry_run: bool,
}

impl ModelPushSettings {
    pub fn resolve(args: &ModelPushArgs, p: &Project) -> ModelPushSettings {
        let reference =
            args.reference.clone().or_else(|| p.config().model.reference.as_ref().map(|r| p.loaded.resolve(r)));
        ModelPushSettings {
            path: args.path.clone().unwrap_or_else(|| p.model_path()),
            version: p.model_version(args.version.as_ref()),
            reference,
            create_bucket: args.create_bucket,
            dry_run: args.dry.dry_run,
        }
    }
}

/// `mlambda deploy`.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub model_version: ModelVersion,
    pub create_role: bool,
    pub wait: std::time::Duration,
    pub dry_run: bool,
}

impl DeploySettings {
    pub fn resolve(args: &DeployArgs, p: &Project) -> DeploySettings {
        DeploySettings {
            model_version: p.model_version(args.model_version.as_ref()),
            create_role: args.create_role,
            wait: args.wait.get(),
            dry_run: args.dry.dry_run,
        }
    }
}

/// `mlambda prune`.
#[derive(Debug, Clone)]
pub struct PruneSettings {
    pub keep: usize,
    pub dry_run: bool,
}

impl PruneSettings {
    pub fn resolve(args: &PruneArgs) -> PruneSettings {
        PruneSettings { keep: args.keep, dry_run: args.dry.dry_run }
    }
}

/// What a rollout does.
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutAction {
    Weight(Weight),
    /// `--steps` or a preset, with the time between steps.
    Steps {
        steps: Steps,
        interval: std::time::Duration,
    },
    Promote,
    Rollback,
}

/// `mlambda rollout`.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSettings {
    pub action: RolloutAction,
    /// `--version`: the candidate; `None` picks the routed or newest version.
    pub version: Option<Version>,
    /// `--force`: promote over a `rollback` verdict.
    pub force: bool,
    pub dry_run: bool,
    /// Shadow the candidate first, for this long at this sample (`--shadow-first`, `shadow-then-canary`).
    pub shadow_first: Option<ShadowFirst>,
    /// `--break-lease`: move the alias over another operator's live lease.
    pub break_lease: bool,
    /// Who this command acts as, on the alias's lease and step record.
    pub operator: String,
}

/// A rollout's shadow phase: the candidate answers copies of `sample` of the requests for `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowFirst {
    pub window: std::time::Duration,
    pub sample: f64,
}

impl RolloutSettings {
    /// Flags over `rollout.interval`; a preset brings its own interval unless `--interval` is given.
    pub fn resolve(args: &RolloutArgs, p: &Project) -> Result<RolloutSettings> {
        let interval = args.interval.unwrap_or(p.config().rollout.interval).get();
        let action = match (args.weight, &args.steps, args.preset) {
            (Some(w), _, _) => RolloutAction::Weight(w),
            (None, Some(s), _) => RolloutAction::Steps { steps: Steps::new(s.clone())?, interval },
            (None, None, Some(preset)) => {
                let (steps, every) = Steps::preset(preset);
                RolloutAction::Steps { steps, interval: args.interval.map(Duration::get).unwrap_or(every) }
            }
            _ if args.promote => RolloutAction::Promote,
            _ if args.rollback => RolloutAction::Rollback,
            _ => {
                return Err(Error::user("`mlambda rollout` needs to know what to do").help(
                    "pass `--weight 0.1`, `--steps 0.1,0.5,1`, `--preset canary10-5m`, `--promote` or `--rollback`",
                ))
            }
        };
        let sample = p.config().rollout.shadow_sample;
        let shadow_first = args.shadow_first.map(|w| ShadowFirst { window: w.get(), sample });
        Ok(RolloutSettings {
            action,
            version: args.version,
            force: args.force,
            dry_run: args.dry.dry_run,
            shadow_first,
            break_lease: args.break_lease,
            operator: operator(),
        })
    }

    /// What `up` does with a newly deployed `version`: `rollout.strategy` from mlambda.yaml.
    pub fn from_strategy(p: &Project, version: Version, dry_run: bool) -> Result<RolloutSettings> {
        let r = &p.config().rollout;
        let interval = r.interval.get();
        let action = match r.strategy {
            RolloutStrategy::Weight => RolloutAction::Weight(r.weight),
            RolloutStrategy::Steps => RolloutAction::Steps { steps: Steps::new(r.steps.clone())?, interval },
            RolloutStrategy::Promote => RolloutAction::Steps { steps: Steps::new(vec![1.0])?, interval },
            RolloutStrategy::Preset(preset) => {
                let (steps, _) = Steps::preset(preset);
                RolloutAction::Steps { steps, interval }
            }
            RolloutStrategy::ShadowThenCanary => {
                let (steps, _) = Steps::preset(crate::domain::Preset::Canary10_5m);
                RolloutAction::Steps { steps, interval }
            }
        };
        let shadow_first = (r.strategy == RolloutStrategy::ShadowThenCanary)
            .then(|| ShadowFirst { window: r.shadow_window.get(), sample: r.shadow_sample });
        Ok(RolloutSettings {
            action,
            version: Some(version),
            force: false,
            dry_run,
            shadow_first,
            break_lease: false,
            operator: operator(),
        })
    }
}

/// Who runs this command, as a lease holder others can find: `MLAMBDA_OPERATOR` when set; else the CI run
/// (GitHub Actions, GitLab CI) or `user@host`; then this process's id, so two shells of one user never share
/// a lease.
pub fn operator() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(o) = var("MLAMBDA_OPERATOR") {
        return o;
    }
    let who = match (var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID"), var("CI_PROJECT_PATH"), var("CI_JOB_ID")) {
        (Some(repo), Some(run), _, _) => format!("github:{repo}#{run}"),
        (_, _, Some(project), Some(job)) => format!("gitlab:{project}#{job}"),
        _ => {
            let user = var("USER").or_else(|| var("USERNAME")).unwrap_or_else(|| "someone".into());
            format!("{user}@{}", gethostname::gethostname().to_string_lossy())
        }
    };
    format!("{who}:{}", std::process::id())
}

/// `mlambda alarms`.
#[derive(Debug, Clone)]
pub struct AlarmsSettings {
    pub delete: bool,
    pub dry_run: bool,
}

impl AlarmsSettings {
    pub fn resolve(args: &AlarmsArgs) -> AlarmsSettings {
        AlarmsSettings { delete: args.delete, dry_run: args.dry.dry_run }
    }
}

/// `mlambda warm`.
#[derive(Debug, Clone)]
pub struct WarmSettings {
    pub provisioned: Option<i32>,
    /// The schedule expression as given; `aws::events::Schedule` checks it.
    pub schedule: Option<String>,
    pub dry_run: bool,
}

impl WarmSettings {
    pub fn resolve(args: &WarmArgs) -> WarmSettings {
        WarmSettings { provisioned: args.provisioned, schedule: args.schedule.clone(), dry_run: args.dry.dry_run }
    }
}

/// Where `mlambda invoke` sends the payload.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeTarget {
    /// An alias (`--alias`, else `function.alias`) or a published version (`--version`).
    Remote { qualifier: String, version: bool },
    /// `--local --runtime PATH`: the bootstrap binary itself.
    LocalBootstrap(PathBuf),
    /// `--local`: the built image on the Docker engine.
    LocalImage,
}

/// `mlambda invoke`.
#[derive(Debug, Clone)]
pub struct InvokeSettings {
    /// `--payload`: inline JSON or a file; `None` sends the warm-up ping.
    pub payload: Option<String>,
    pub target: InvokeTarget,
}

impl InvokeSettings {
    pub fn resolve(args: &InvokeArgs, p: &Project) -> InvokeSettings {
        let target = match (args.local, &args.runtime) {
            (true, Some(bin)) => InvokeTarget::LocalBootstrap(bin.clone()),
            (true, None) => InvokeTarget::LocalImage,
            (false, _) => InvokeTarget::Remote {
                qualifier: args
                    .version
                    .clone()
                    .or_else(|| args.alias.clone())
                    .unwrap_or_else(|| p.config().function.alias.clone()),
                version: args.version.is_some(),
            },
        };
        InvokeSettings { payload: args.payload.clone(), target }
    }
}

/// `mlambda up`, and the settings of each step it runs.
#[derive(Debug, Clone)]
pub struct UpSettings {
    pub runtime: Option<PathBuf>,
    pub create_role: bool,
    pub create_bucket: bool,
    pub restart: bool,
    pub dry_run: bool,
}

impl UpSettings {
    pub fn resolve(args: &UpArgs) -> UpSettings {
        UpSettings {
            runtime: args.runtime.clone(),
            create_role: args.create_role,
            create_bucket: args.create_bucket,
            restart: args.restart,
            dry_run: args.dry.dry_run,
        }
    }

    pub fn build(&self, p: &Project) -> BuildSettings {
        BuildSettings {
            runtime: self.runtime.clone(),
            tag: p.config().image.tag.clone(),
            model_version: p.model_version(None),
            model_path: p.model_path(),
            dry_run: self.dry_run,
        }
    }

    pub fn push(&self, p: &Project) -> PushSettings {
        let args = PushArgs { create_bucket: self.create_bucket, dry: crate::cli::DryRun { dry_run: self.dry_run } };
        PushSettings::resolve(&args, p)
    }

    pub fn model_push(&self, p: &Project) -> ModelPushSettings {
        ModelPushSettings {
            path: p.model_path(),
            version: p.model_version(None),
            reference: p.config().model.reference.as_ref().map(|r| p.loaded.resolve(r)),
            create_bucket: self.create_bucket,
            dry_run: self.dry_run,
        }
    }

    pub fn deploy(&self, p: &Project) -> DeploySettings {
        DeploySettings {
            model_version: p.model_version(None),
            create_role: self.create_role,
            wait: std::time::Duration::from_secs(300),
            dry_run: self.dry_run,
        }
    }

    pub fn alarms(&self) -> AlarmsSettings {
        AlarmsSettings { delete: false, dry_run: self.dry_run }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cli::DryRun;
    use crate::domain::Preset;

    const CONFIG: &str = "function:\n  name: churn\nimage:\n  repository: churn\n  tag: fixed\nmodel:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: b\n  features: [a]\nrollout:\n  interval: 2m\n";

    fn project() -> Project {
        let config = crate::config::parse(CONFIG, Path::new("cfg/mlambda.yaml")).unwrap();
        Project::new(Loaded { config, path: "cfg/mlambda.yaml".into(), dir: "cfg".into() })
    }

    fn rollout_args() -> RolloutArgs {
        RolloutArgs {
            weight: None,
            steps: None,
            interval: None,
            preset: None,
            shadow_first: None,
            promote: false,
            rollback: false,
            version: None,
            force: false,
            break_lease: false,
            dry: DryRun { dry_run: false },
        }
    }

    #[test]
    fn shadow_then_canary_shadows_for_its_window_then_steps_like_canary10() {
        let text = CONFIG.replace("rollout:\n", "rollout:\n  strategy: shadow-then-canary\n  shadow_window: 30m\n");
        let config = crate::config::parse(&text, Path::new("cfg/mlambda.yaml")).unwrap();
        let p = Project::new(Loaded { config, path: "cfg/mlambda.yaml".into(), dir: "cfg".into() });
        let s = RolloutSettings::from_strategy(&p, "4".parse().unwrap(), false).unwrap();
        assert_eq!(s.shadow_first, Some(ShadowFirst { window: std::time::Duration::from_secs(1800), sample: 0.2 }));
        let RolloutAction::Steps { steps, .. } = s.action else { panic!("{s:?}") };
        assert_eq!(steps.weights(), Steps::preset(crate::domain::Preset::Canary10_5m).0.weights());
        let args =
            RolloutArgs { steps: Some(vec![0.1, 1.0]), shadow_first: Some("1h".parse().unwrap()), ..rollout_args() };
        let s = RolloutSettings::resolve(&args, &p).unwrap();
        assert_eq!(s.shadow_first.map(|f| f.window.as_secs()), Some(3600));
        let bad = CONFIG.replace("rollout:\n", "rollout:\n  shadow_sample: 1.5\n");
        let err = crate::config::parse(&bad, Path::new("cfg/mlambda.yaml")).unwrap_err();
        assert!(err.to_string().contains("rollout.shadow_sample"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_fills_in_the_rest() {
        let p = project();
        let b = BuildSettings::resolve(&BuildArgs { runtime: None, tag: None, dry: DryRun { dry_run: true } }, &p);
        assert_eq!((b.tag.as_deref(), b.model_version.as_str()), (Some("fixed"), "v1"));
        assert_eq!(b.model_path, Path::new("cfg/model.onnx"));
        let b = BuildSettings::resolve(
            &BuildArgs { runtime: None, tag: Some("mine".into()), dry: DryRun { dry_run: false } },
            &p,
        );
        assert_eq!(b.tag.as_deref(), Some("mine"));
        assert_eq!(p.state_dir, Path::new("cfg/.mlambda"));
    }

    #[test]
    fn a_rollout_resolves_its_action_and_interval() {
        let p = project();
        let mut a = rollout_args();
        assert!(RolloutSettings::resolve(&a, &p).unwrap_err().message.contains("needs to know what to do"));
        a.steps = Some(vec![0.5, 1.0]);
        let s = RolloutSettings::resolve(&a, &p).unwrap();
        assert!(matches!(s.action, RolloutAction::Steps { interval, .. } if interval.as_secs() == 120));
        a.steps = None;
        a.preset = Some(Preset::Linear10_1m);
        let s = RolloutSettings::resolve(&a, &p).unwrap();
        assert!(matches!(s.action, RolloutAction::Steps { interval, .. } if interval.as_secs() == 60));
        let up = RolloutSettings::from_strategy(&p, Version::parse("2").unwrap(), false).unwrap();
        assert_eq!(up.action, RolloutAction::Weight(Weight::TEN_PERCENT));
    }
}
