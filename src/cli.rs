//! Clap types only: every flag, its help text and its examples.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::{Duration, ModelVersion, Preset, Version, Weight};

#[derive(Debug, Parser)]
#[command(
    name = "mlambda",
    version,
    about = "Take a trained ONNX model to production on AWS Lambda and keep it safe there",
    long_about = "Take a trained ONNX model to production on AWS Lambda and keep it safe there.\n\n\
        mlambda builds a tiny image around a static Rust runtime, pushes it to ECR, uploads a verified \
        model to S3, deploys it as a published Lambda version behind an alias, shifts traffic with \
        alarm-guarded rollouts and reports where everything stands.",
    after_help = "Examples:\n  mlambda init my-model\n  mlambda up\n  mlambda rollout --weight 0.1\n  mlambda status --output json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Project file
    #[arg(long, global = true, default_value = "mlambda.yaml", env = "MLAMBDA_CONFIG", hide_env_values = true)]
    pub config: PathBuf,
    /// AWS profile from ~/.aws/config
    #[arg(long, global = true, env = "AWS_PROFILE", hide_env_values = true)]
    pub profile: Option<String>,
    /// AWS region
    #[arg(long, global = true, env = "AWS_REGION", hide_env_values = true)]
    pub region: Option<String>,
    /// Output format: text for people, json for scripts (data on stdout, status on stderr)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print only data and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a project: mlambda.yaml, an example payload and an export script
    #[command(after_help = "Examples:\n  mlambda init\n  mlambda init churn --force")]
    Init(InitArgs),
    /// Build the function image through the Docker API, or the zip package (`function.package: zip`)
    #[command(
        after_help = "Examples:\n  mlambda build\n  mlambda build --runtime target/x86_64-unknown-linux-gnu/lambda/bootstrap --dry-run"
    )]
    Build(BuildArgs),
    /// Push the built image to ECR, or the zip package to S3, and record its digest
    #[command(after_help = "Examples:\n  mlambda push\n  MLAMBDA_REGISTRY=127.0.0.1:5000 mlambda push --output json")]
    Push(PushArgs),
    /// Check, upload and list model versions in S3
    #[command(subcommand)]
    Model(ModelCommand),
    /// Update the function by image digest, wait until ready, publish a version and set the alias
    #[command(after_help = "Examples:\n  mlambda deploy\n  mlambda deploy --model-version v4 --create-role --dry-run")]
    Deploy(DeployArgs),
    /// Delete published versions beyond the newest N, never one an alias uses
    #[command(after_help = "Examples:\n  mlambda prune --keep 5 --dry-run")]
    Prune(PruneArgs),
    /// Print the IAM policy the deployer itself needs
    #[command(name = "iam-policy", after_help = "Examples:\n  mlambda iam-policy > deployer-policy.json")]
    IamPolicy,
    /// Shift alias traffic to a new version: a fixed weight, steps guarded by alarms, promote or roll back
    #[command(
        after_help = "Examples:\n  mlambda rollout --weight 0.1\n  mlambda rollout --steps 0.1,0.5,1 --interval 5m\n  \
        mlambda rollout --preset canary10-5m\n  mlambda rollout --promote\n  mlambda rollout --rollback"
    )]
    Rollout(RolloutArgs),
    /// Create, update or delete the CloudWatch alarms for the alias and each version
    #[command(
        after_help = "Examples:\n  mlambda alarms\n  mlambda alarms --dry-run --output json\n  mlambda alarms --delete"
    )]
    Alarms(AlarmsArgs),
    /// Show the function, image, versions, alias routing, models and alarm states
    #[command(after_help = "Examples:\n  mlambda status\n  mlambda status --output json")]
    Status,
    /// Keep the alias warm: provisioned concurrency or a scheduled ping
    #[command(after_help = "Examples:\n  mlambda warm --provisioned 5\n  mlambda warm --schedule 'rate(5 minutes)'")]
    Warm(WarmArgs),
    /// Send a payload to the deployed function, or to the image running locally
    #[command(after_help = "Examples:\n  mlambda invoke --payload payloads/one.json\n  \
        mlambda invoke --payload '{\"tenure_months\": 3}' --version 4\n  mlambda invoke --local")]
    Invoke(InvokeArgs),
    /// Compare the candidate with the baseline from prediction logs, metrics and outcomes: promote, roll back or wait
    #[command(
        after_help = "Examples:\n  mlambda report\n  mlambda report --since 6h --outcomes churned.csv --html report.html\n  \
        mlambda report --baseline 3 --candidate 4 --output json"
    )]
    Report(ReportArgs),
    /// Copy a sample of the primary's live requests to a candidate version that no caller sees; --stop ends it
    #[command(
        after_help = "Examples:\n  mlambda shadow --version 4 --sample 0.2 --until 24h\n  mlambda shadow --stop\n  \
        mlambda report --shadow --outcomes churned.csv"
    )]
    Shadow(ShadowArgs),
    /// Score a whole dataset in S3 with one function version, fanned out by Step Functions Distributed Map
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Create, or show, the alias's function URL: the recipe's stable HTTPS endpoint, weighted like the alias
    #[command(after_help = "Examples:\n  mlambda url\n  mlambda url --public --dry-run\n  mlambda url --output json")]
    Url(UrlArgs),
    /// Run the whole flow: build, push, model push, deploy, rollout, alarms; resumes after a failure
    #[command(after_help = "Examples:\n  mlambda up\n  mlambda up --dry-run --output json")]
    Up(UpArgs),
    /// Write what mlambda deploys as infrastructure code another tool owns
    #[command(subcommand)]
    Export(ExportCommand),
    /// Find the static `bootstrap` every image carries, or compile it once into the user cache
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Print shell completions
    #[command(after_help = "Examples:\n  mlambda completions bash > /etc/bash_completion.d/mlambda")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(after_help = "Examples:\n  mlambda man > mlambda.1")]
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct DryRun {
    /// Print the plan and touch nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory to scaffold
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Also write a CI workflow for this CI: `github` (`.github/workflows/mlambda.yml`: OIDC, `pip install
    /// mlambda`, `mlambda up` on main, a promote gated on `mlambda report`'s verdict)
    #[arg(long, value_name = "NAME")]
    pub ci: Option<String>,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The static `bootstrap` binary to put in the image (default: the user cache, this checkout, or compiled
    /// once from the runtime source inside mlambda; see `mlambda runtime path`)
    #[arg(long, env = "MLAMBDA_RUNTIME", hide_env_values = true)]
    pub runtime: Option<PathBuf>,
    /// Image tag (default: <model version>-<content hash>)
    #[arg(long)]
    pub tag: Option<String>,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// For `function.package: zip`: create the bucket, with versioning and default encryption, when it is missing
    #[arg(long)]
    pub create_bucket: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Check a model with the runtime's own loader, then upload it as an immutable version
    #[command(
        after_help = "Examples:\n  mlambda model push\n  mlambda model push model.onnx --version v4 --reference reference.json"
    )]
    Push(ModelPushArgs),
    /// List model versions with size, sha256 and which function versions and aliases use them
    #[command(after_help = "Examples:\n  mlambda model list --output json")]
    List,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BatchCommand {
    /// Cut INPUT into slices, score every slice on Lambda through a Distributed Map, and account for every row
    #[command(
        after_help = "Examples:\n  mlambda batch run customers.csv --out s3://scores/weekly/ --version 4 --wait\n  \
        mlambda batch run s3://data/customers.jsonl --out s3://scores/q3/ --alias live --id-field customer_id --dry-run"
    )]
    Run(BatchRunArgs),
    /// Show a run's progress and accounting (default: the newest run)
    #[command(after_help = "Examples:\n  mlambda batch status\n  mlambda batch status 3f9a0c21d4e7 --output json")]
    Status(BatchRunRef),
    /// List the function's batch runs, newest first
    #[command(after_help = "Examples:\n  mlambda batch list --output json")]
    List,
    /// Stop a running run; `mlambda batch run` with the same arguments resumes it
    #[command(after_help = "Examples:\n  mlambda batch stop 3f9a0c21d4e7")]
    Stop(BatchStopArgs),
}

#[derive(Debug, Clone, Subcommand)]
pub enum ExportCommand {
    /// Write Terraform HCL for the function, alias, execution role, alarms and batch state machine, with
    /// `ignore_changes` on what mlambda moves and `import` blocks for what already exists; pair it with
    /// `function.managed_by: terraform`
    #[command(
        after_help = "Examples:\n  mlambda export terraform > mlambda.tf\n  mlambda export terraform --dir infra/mlambda\n  \
        mlambda export terraform --output json"
    )]
    Terraform(ExportTerraformArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExportTerraformArgs {
    /// Write one `.tf` file per concern (lambda.tf, iam.tf, alarms.tf, batch.tf, imports.tf) into DIR instead of
    /// printing the HCL
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BatchRunArgs {
    /// The rows: `s3://BUCKET/KEY` or a local file (uploaded as slices); CSV with a header row, or JSON Lines
    pub input: String,
    /// Where the run writes: `s3://BUCKET/PREFIX/` (the run's files go under `PREFIX/<run>/`)
    #[arg(long, value_name = "S3_PREFIX")]
    pub out: String,
    /// The function version to score with (default: the alias's version)
    #[arg(long, value_parser = parse::<Version>, conflicts_with = "alias")]
    pub version: Option<Version>,
    /// Score with the version this alias points at (default: `function.alias`)
    #[arg(long)]
    pub alias: Option<String>,
    /// The column naming each row in the output and the failures (default: `model.id_field`)
    #[arg(long, value_name = "FIELD")]
    pub id_field: Option<String>,
    /// Slices scored at once (the Map's MaxConcurrency)
    #[arg(long, value_name = "C", default_value_t = crate::plan::batch::DEFAULT_MAX_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrency: u32,
    /// Percentage of rows (and slices) that may fail while the run still succeeds
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_percent)]
    pub tolerated_failure: f64,
    /// Rows per slice: one function invocation each
    #[arg(long, value_name = "N", default_value_t = crate::plan::batch::DEFAULT_SLICE_ROWS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub slice_rows: u64,
    /// Wait for the run, showing the slices' progress (Ctrl-C stops waiting, not the run)
    #[arg(long)]
    pub wait: bool,
    /// Write into a prefix that already holds another run
    #[arg(long)]
    pub overwrite: bool,
    /// Create the Step Functions role if it is missing (or name one with `batch.role`)
    #[arg(long)]
    pub create_role: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct ShadowArgs {
    /// The candidate version that answers the copies
    #[arg(long, value_parser = parse::<Version>, required_unless_present = "stop", conflicts_with = "stop")]
    pub version: Option<Version>,
    /// The share of the primary's requests copied, in (0, 1]
    #[arg(long, default_value_t = 0.2, value_parser = parse_sample)]
    pub sample: f64,
    /// How long to shadow before copies stop by themselves
    #[arg(long, default_value = "24h", value_parser = Duration::parse_flag)]
    pub until: Duration,
    /// Stop copying and take the primary's permission to invoke the candidate away
    #[arg(long)]
    pub stop: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

/// Out of range is a domain error (exit 1, like `--weight 1.5`); not a number stays clap's usage error.
fn parse_sample(s: &str) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    let p: f64 = s.trim().parse()?;
    if p > 0.0 && p <= 1.0 {
        return Ok(p);
    }
    Err(Box::new(crate::domain::DomainError::Sample(s.to_string())))
}

#[derive(Debug, Clone, Args)]
pub struct BatchRunRef {
    /// The run id `batch run` printed (default: the newest run)
    pub run: Option<String>,
    /// Wait for the run to finish, showing the slices' progress
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BatchStopArgs {
    /// The run id
    pub run: String,
    #[command(flatten)]
    pub dry: DryRun,
}

fn parse_percent(s: &str) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    let p: f64 = s.trim().trim_end_matches('%').parse()?;
    if (0.0..=100.0).contains(&p) {
        return Ok(p);
    }
    Err(Box::new(crate::domain::DomainError::Percent(s.to_string())))
}

#[derive(Debug, Clone, Args)]
pub struct ModelPushArgs {
    /// The ONNX file (default: `model.path` in mlambda.yaml)
    pub path: Option<PathBuf>,
    /// Model version (default: `model.version`)
    #[arg(long, value_parser = parse::<ModelVersion>)]
    pub version: Option<ModelVersion>,
    /// Reference rows and expected outputs the model must reproduce (default: `model.reference`)
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Create the bucket, with versioning and default encryption, when it is missing
    #[arg(long)]
    pub create_bucket: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Model version to serve (default: `model.version`)
    #[arg(long, value_parser = parse::<ModelVersion>)]
    pub model_version: Option<ModelVersion>,
    /// Create (or reuse) a least-privilege execution role when `function.role` is not set
    #[arg(long)]
    pub create_role: bool,
    /// Give up waiting for the function to become ready after this long
    #[arg(long, default_value = "5m", value_parser = Duration::parse_flag)]
    pub wait: Duration,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Published versions to keep
    #[arg(long, default_value_t = 5)]
    pub keep: usize,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    /// Send this fraction of the alias's traffic to the candidate, 0 < W < 1
    #[arg(long, conflicts_with_all = ["steps", "preset", "promote", "rollback"], value_parser = Weight::parse_flag)]
    pub weight: Option<Weight>,
    /// Shift step by step, checking the candidate's alarms between steps; 1 promotes
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["preset", "promote", "rollback"])]
    pub steps: Option<Vec<f64>>,
    /// Time between steps
    #[arg(long, value_parser = Duration::parse_flag)]
    pub interval: Option<Duration>,
    /// A CodeDeploy-like preset: canary10-5m, linear10-1m
    #[arg(long, conflicts_with_all = ["promote", "rollback"], value_parser = parse::<Preset>)]
    pub preset: Option<Preset>,
    /// Shadow the candidate for this long first (`rollout.shadow_sample` of the requests); the steps start
    /// only if the shadow's verdict is not `rollback`
    #[arg(long, value_name = "WINDOW", value_parser = Duration::parse_flag, conflicts_with_all = ["weight", "promote", "rollback"])]
    pub shadow_first: Option<Duration>,
    /// Make the candidate primary at 100% and clear the routing
    #[arg(long, conflicts_with = "rollback")]
    pub promote: bool,
    /// Clear the routing; after a promote, go back to the previous primary
    #[arg(long)]
    pub rollback: bool,
    /// Candidate version (default: the newest published version)
    #[arg(long, value_parser = parse::<Version>)]
    pub version: Option<Version>,
    /// Promote even when the report's verdict is `rollback`; route traffic to a candidate whose backtest
    /// (`mlambda report --batch`) says `rollback`
    #[arg(long, conflicts_with = "rollback")]
    pub force: bool,
    /// Move the alias even though another operator's stepped rollout holds its lease (that rollout stops at
    /// its next step)
    #[arg(long)]
    pub break_lease: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct AlarmsArgs {
    /// Delete the alarms instead
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct WarmArgs {
    /// Set provisioned concurrency on the alias (0 removes it)
    #[arg(long, conflicts_with = "schedule")]
    pub provisioned: Option<i32>,
    /// Ping the alias with {"_warmup": true} on an EventBridge schedule, e.g. 'rate(5 minutes)'
    #[arg(long)]
    pub schedule: Option<String>,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// A JSON payload, or a file holding one (default: `{"_warmup": true}`)
    #[arg(long)]
    pub payload: Option<String>,
    /// Alias to invoke (default: `function.alias`)
    #[arg(long, conflicts_with = "version")]
    pub alias: Option<String>,
    /// Published version to invoke
    #[arg(long)]
    pub version: Option<String>,
    /// Run the built image on the Docker engine in local mode and send the payload there
    #[arg(long)]
    pub local: bool,
    /// With --local: run this bootstrap binary directly instead of the image
    #[arg(long)]
    pub runtime: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The static `bootstrap` binary to put in the image
    #[arg(long, env = "MLAMBDA_RUNTIME", hide_env_values = true)]
    pub runtime: Option<PathBuf>,
    /// Create (or reuse) a least-privilege execution role
    #[arg(long)]
    pub create_role: bool,
    /// Create the model bucket when it is missing
    #[arg(long)]
    pub create_bucket: bool,
    /// Start again from the first step instead of resuming
    #[arg(long)]
    pub restart: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

/// A domain value from its text; its error reaches `main` typed, so the message and exit code match the config's.
fn parse<T: std::str::FromStr<Err = crate::domain::DomainError>>(s: &str) -> Result<T, crate::domain::DomainError> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Compile the runtime into the user cache now (a few minutes, once per mlambda version and architecture)
    #[command(after_help = "Examples:\n  mlambda runtime build\n  mlambda runtime build --arch arm64 --force")]
    Build(RuntimeBuildArgs),
    /// Print where `mlambda build` gets the runtime and which source gave it: flag, env, cache, checkout or
    /// embedded-source
    #[command(after_help = "Examples:\n  mlambda runtime path\n  mlambda runtime path --arch arm64 --output json")]
    Path(RuntimePathArgs),
}

/// The architecture a runtime is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArch {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

#[derive(Debug, Clone, Args)]
pub struct RuntimeBuildArgs {
    /// Architecture (default: `function.architecture` in mlambda.yaml, else x86_64)
    #[arg(long, value_enum)]
    pub arch: Option<RuntimeArch>,
    /// Compile again even when the cache already has this runtime
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RuntimePathArgs {
    /// Architecture (default: `function.architecture` in mlambda.yaml, else x86_64)
    #[arg(long, value_enum)]
    pub arch: Option<RuntimeArch>,
    /// A `bootstrap` to use instead, as `mlambda build --runtime` takes it
    #[arg(long, env = "MLAMBDA_RUNTIME", hide_env_values = true)]
    pub runtime: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct UrlArgs {
    /// Anyone may call the URL (auth type NONE, plus the permission that allows it); default: AWS_IAM (SigV4)
    #[arg(long)]
    pub public: bool,
    #[command(flatten)]
    pub dry: DryRun,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Start of the window: a duration ago (`24h`, `90m`) or an RFC 3339 time
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End of the window: a duration ago or an RFC 3339 time (default: now)
    #[arg(long)]
    pub until: Option<String>,
    /// Baseline version (default: the alias's primary version)
    #[arg(long)]
    pub baseline: Option<String>,
    /// Candidate version (default: the version the alias sends a share of traffic to)
    #[arg(long)]
    pub candidate: Option<String>,
    /// Outcomes CSV `id,label` (did the customer churn?), joined on the prediction lines' `id`
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
    /// Also write a self-contained HTML page with the charts to this file
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Backtest on a batch run's output instead of live logs: `s3://BUCKET/PREFIX/<run>/`. Give two runs by two
    /// versions over the same ids for the paired test and a verdict (the alias's primary, else the first run, is
    /// the baseline); needs --outcomes
    #[arg(long, value_name = "RUN", conflicts_with_all = ["until", "html"])]
    pub batch: Vec<String>,
    /// Compare a shadow with the primary it shadowed (`mlambda shadow`): their answers to the same copied
    /// requests, paired row by row, with the paired AUC test and a verdict when --outcomes is given. The
    /// candidate is the shadow target (or --candidate), the baseline the primary that copied to it
    #[arg(long, conflicts_with = "batch")]
    pub shadow: bool,
}
