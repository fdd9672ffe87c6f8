//! The plugin configuration: its schema and parser with key-path errors
//! (`config`), and the path templates and resource matching it compiles
//! (`resources`). Built once per configuration, never per request.

pub mod config;
pub mod resources;
