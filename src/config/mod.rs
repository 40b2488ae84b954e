//! Configuration: YAML -> raw types -> validated [`Config`].
