//! The error a plugin returns; the host maps it onto the contract's `plugin-error`.

/// Which `plugin-error` variant an [`Error`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The stage's `config` is wrong.
    InvalidConfig,
    /// The plugin cannot handle this table or batch.
    InvalidInput,
    /// Anything else.
    Failed,
}

/// A plugin error: the stage's `on_error` policy decides what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Which kind.
    pub kind: ErrorKind,
    /// What went wrong, for the operator.
    pub message: String,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stage's `config` is wrong.
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidConfig,
            message: message.into(),
        }
    }

    /// The plugin cannot handle this input (a missing column, an unexpected type).
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// Anything else.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ErrorKind::InvalidConfig => "invalid config",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Failed => "failed",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(feature = "batch")]
impl From<arrow_schema::ArrowError> for Error {
    fn from(error: arrow_schema::ArrowError) -> Self {
        Error::failed(error.to_string())
    }
}

#[cfg(any(feature = "row", feature = "batch"))]
macro_rules! impl_into_wit {
    ($module:path) => {
        impl From<Error> for $module {
            fn from(error: Error) -> Self {
                use $module as E;
                match error.kind {
                    ErrorKind::InvalidConfig => E::InvalidConfig(error.message),
                    ErrorKind::InvalidInput => E::InvalidInput(error.message),
                    ErrorKind::Failed => E::Failed(error.message),
                }
            }
        }
    };
}

#[cfg(feature = "row")]
impl_into_wit!(crate::wit::row::weir::plugin::types::PluginError);
#[cfg(feature = "batch")]
impl_into_wit!(crate::wit::batch::weir::plugin::types::PluginError);
