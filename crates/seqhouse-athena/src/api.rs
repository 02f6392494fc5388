//! What the adapter asks of Athena, behind a small trait: the seam where tests inject failures.

use std::time::Duration;

use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};

/// The state of a query, as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed, with Athena's reason.
    Failed(String),
    /// Cancelled, with Athena's reason.
    Cancelled(String),
}

/// Why a call to Athena failed, by what the adapter does about it: an unreachable service
/// means nothing ran (the port's `EngineUnreachable`); a refusal is Athena's answer to this
/// query (`QueryFailed`, with Athena's words).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The service could not be reached: no connection, DNS, a timeout.
    #[error("{0}")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Athena answered with an error: its code (`InvalidRequestException`, ...) and message.
    #[error("{code}: {message}")]
    Refused {
        /// Athena's error code.
        code: String,
        /// Athena's message.
        message: String,
    },
    /// Anything else (a malformed response, a client bug), as the client described it.
    #[error("{0}")]
    Other(String),
}

/// The calls the adapter makes. The adapter adds the query id and converts [`ApiError`] into
/// the port's error.
pub trait QueryApi: Send + Sync {
    /// Starts `sql`; returns the query execution id.
    fn start(&self, sql: &str) -> Result<String, ApiError>;
    /// The query's state now.
    fn state(&self, id: &str) -> Result<QueryState, ApiError>;
    /// Asks Athena to stop the query.
    fn cancel(&self, id: &str) -> Result<(), ApiError>;
    /// The result rows (without the header row), as text.
    fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, ApiError>;
}

/// Where and how queries run.
#[derive(Debug, Clone)]
pub struct AthenaOptions {
    /// Workgroup.
    pub workgroup: String,
    /// Database of the temporary table (and of unqualified `--athena-table` names).
    pub database: String,
    /// Query result location (`s3://...`); `None` uses the workgroup's.
    pub results: Option<String>,
    /// Endpoint URL; `None` reads `AWS_ENDPOINT_URL_ATHENA` / `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes the AWS chain's.
    pub region: Option<String>,
    /// First poll interval; later polls back off to 5 s.
    pub poll_interval: Duration,
    /// A query running longer is cancelled and the run fails.
    pub timeout: Duration,
}

impl Default for AthenaOptions {
    fn default() -> Self {
        AthenaOptions {
            workgroup: "primary".into(),
            database: "default".into(),
            results: None,
            endpoint: None,
            region: None,
            poll_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(3600),
        }
    }
}

/// [`QueryApi`] through the AWS SDK, with the standard credential chain.
pub struct SdkQueryApi {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_athena::Client,
    options: AthenaOptions,
}

/// Classifies an SDK error by its kind, keeping Athena's code and message for a refusal.
fn classify<E, R>(e: aws_sdk_athena::error::SdkError<E, R>) -> ApiError
where
    E: std::error::Error + aws_sdk_athena::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_athena::error::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ApiError::Unreachable(Box::new(e)),
        SdkError::ServiceError(service) => {
            let error = service.err();
            ApiError::Refused {
                code: error.code().unwrap_or("UnknownError").to_string(),
                message: error.message().map_or_else(|| chain(error), str::to_string),
            }
        }
        other => ApiError::Other(chain(&other)),
    }
}

/// An error and its sources on one line: the SDK's Display alone is terse ("service error").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl SdkQueryApi {
    /// Loads the AWS configuration and builds the client.
    pub fn new(options: AthenaOptions) -> Result<Self, ApiError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ApiError::Other(format!("cannot start the Athena client runtime: {e}")))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let endpoint = options.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL_ATHENA").ok());
        if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
            loader = loader.endpoint_url(endpoint);
        }
        let config = runtime.block_on(loader.load());
        Ok(SdkQueryApi { client: aws_sdk_athena::Client::new(&config), runtime, options })
    }
}

impl QueryApi for SdkQueryApi {
    fn start(&self, sql: &str) -> Result<String, ApiError> {
        let mut request = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.options.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.options.database).build());
        if let Some(results) = &self.options.results {
            request = request.result_configuration(ResultConfiguration::builder().output_location(results).build());
        }
        let response = self.runtime.block_on(request.send()).map_err(classify)?;
        response
            .query_execution_id()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Other("Athena returned no query id".into()))
    }

    fn state(&self, id: &str) -> Result<QueryState, ApiError> {
        let response =
            self.runtime.block_on(self.client.get_query_execution().query_execution_id(id).send()).map_err(classify)?;
        let status = response.query_execution().and_then(|q| q.status());
        let reason = status.and_then(|s| s.state_change_reason()).unwrap_or("no reason given").to_string();
        Ok(match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Queued) | None => QueryState::Queued,
            Some(QueryExecutionState::Running) => QueryState::Running,
            Some(QueryExecutionState::Succeeded) => QueryState::Succeeded,
            Some(QueryExecutionState::Cancelled) => QueryState::Cancelled(reason),
            Some(_) => QueryState::Failed(reason),
        })
    }

    fn cancel(&self, id: &str) -> Result<(), ApiError> {
        self.runtime.block_on(self.client.stop_query_execution().query_execution_id(id).send()).map_err(classify)?;
        Ok(())
    }

    fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, ApiError> {
        let response =
            self.runtime.block_on(self.client.get_query_results().query_execution_id(id).send()).map_err(classify)?;
        let rows = response.result_set().map(|r| r.rows()).unwrap_or_default();
        Ok(rows
            .iter()
            .skip(1) // the header row
            .map(|row| row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect())
            .collect())
    }
}
