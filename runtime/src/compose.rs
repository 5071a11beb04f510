//! Composition: an app that imports interfaces other *components* export —
//! WASI from the shipped `wasi` component, or `kv` from a `[components.*]`
//! entry of the manifest — is composed with those providers into one
//! component before linking (with `wac-graph`, the library behind `wac plug`).
//!
//! The result imports only what neither the app nor a provider satisfies
//! (weft devices, for the linker to bind as usual) and exports the app's
//! exports plus each provider's `weft:devices/filter`, under the label
//! [`config_export`], so the runtime can configure it, and its
//! `weft:devices/shutdown` when it has one (`<name>-shutdown`), so the runtime
//! can tell it the run ended. Both hosts then see one
//! app, so a composed unikernel runs the same under `weft run` and `weft boot`.
//!
//! An import matches an export of the same interface at a semver-compatible
//! version (an app built against `wasi:cli/stdout@0.2.0` takes the `@0.2.12`
//! export), and only when the export's type is a subtype of the import's.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use wac_graph::types::{are_semver_compatible, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

use crate::names;

/// A component whose exports may satisfy the app's imports.
pub struct Provider<'a> {
    /// Its name in the manifest (`wasi`, `kv`): kebab-case.
    pub name: &'a str,
    pub bytes: &'a [u8],
}

pub use names::config_export;

/// Why a composition failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// The app imports `wasi:*` interfaces no provider exports (every one, sorted).
    Unprovided(Vec<String>),
    /// A provider is never used: the app imports nothing it exports.
    Unused(String),
    /// The bytes are not a component wac can read, or the graph is invalid.
    Invalid(String),
}

impl core::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ComposeError::Unprovided(list) => write!(f, "imports WASI interfaces weft does not provide: {}", list.join(", ")),
            ComposeError::Unused(name) => write!(f, "the app imports nothing that component `{name}` exports"),
            ComposeError::Invalid(m) => f.write_str(m),
        }
    }
}

impl core::error::Error for ComposeError {}

/// The names a component imports at its top level (`wasi:cli/stdout@0.2.6`,
/// `weft:devices/console@0.1.0`), read without compiling it. Nested modules
/// and components are skipped unread: a Python component is tens of MiB of
/// them, and this runs on every start.
pub fn imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut out = Vec::new();
    let mut parser = Parser::new(0);
    let mut at = 0;
    while at < bytes.len() {
        let (payload, consumed) = match parser.parse(&bytes[at..], true).map_err(|e| e.to_string())? {
            Chunk::Parsed { payload, consumed } => (payload, consumed),
            Chunk::NeedMoreData(_) => return Err("truncated component".into()),
        };
        at += consumed;
        match payload {
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                at += (unchecked_range.end - unchecked_range.start) as usize;
            }
            Payload::ComponentImportSection(s) => {
                for import in s {
                    out.push(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether the app needs the `wasi` component.
pub fn wants_wasi(imports: &[String]) -> bool {
    imports.iter().any(|i| i.starts_with("wasi:"))
}

fn invalid(what: &str, e: impl core::fmt::Display) -> ComposeError {
    ComposeError::Invalid(format!("{what}: {e:#}"))
}

/// Composes `app` with `providers` (in order; a provider may also take
/// imports from the providers before it). Every provider must be used.
pub fn compose(app: &[u8], providers: &[Provider<'_>]) -> Result<Vec<u8>, ComposeError> {
    let mut g = CompositionGraph::new();
    let app_pkg = register(&mut g, "weft:app", app)?;
    let mut placed: Vec<(PackageId, NodeId, &str)> = Vec::new();
    for p in providers {
        let pkg = register(&mut g, &format!("weft:{}", p.name), p.bytes)?;
        let node = g.instantiate(pkg);
        // Earlier providers may serve this one's imports (none does today).
        let earlier = placed.clone();
        plug(&mut g, pkg, node, &earlier)?;
        placed.push((pkg, node, p.name));
    }
    let app_node = g.instantiate(app_pkg);
    let used = plug(&mut g, app_pkg, app_node, &placed)?;
    let mut unprovided: Vec<String> = import_names(&g, app_pkg)
        .into_iter()
        .filter(|i| i.starts_with("wasi:") && !used.iter().any(|(import, _)| import == i))
        .collect();
    if !unprovided.is_empty() {
        unprovided.sort();
        return Err(ComposeError::Unprovided(unprovided));
    }
    for (_, _, name) in &placed {
        if !used.iter().any(|(_, provider)| provider == name) {
            return Err(ComposeError::Unused(name.to_string()));
        }
    }
    for name in export_names(&g, app_pkg) {
        let alias = g.alias_instance_export(app_node, &name).map_err(|e| invalid("app export", e))?;
        g.export(alias, &name).map_err(|e| invalid("app export", e))?;
    }
    for (pkg, node, name) in &placed {
        let exports = export_names(&g, *pkg);
        let find = |iface: &str| exports.iter().find(|e| names::split_version(e).0 == iface);
        for (iface, label) in [("weft:devices/filter", config_export(name)), (names::SHUTDOWN, names::shutdown_export(name))] {
            if let Some(export) = find(iface) {
                let alias = g.alias_instance_export(*node, export).map_err(|e| invalid(name, e))?;
                g.export(alias, &label).map_err(|e| invalid(name, e))?;
            }
        }
    }
    g.encode(EncodeOptions { define_components: true, validate: false, processor: None })
        .map_err(|e| invalid("encoding the composition", e))
}

fn register(g: &mut CompositionGraph, name: &str, bytes: &[u8]) -> Result<PackageId, ComposeError> {
    let pkg = Package::from_bytes(name, None, bytes.to_vec(), g.types_mut()).map_err(|e| invalid(name, e))?;
    g.register_package(pkg).map_err(|e| invalid(name, e))
}

fn import_names(g: &CompositionGraph, pkg: PackageId) -> Vec<String> {
    g.types()[g[pkg].ty()].imports.keys().cloned().collect()
}

fn export_names(g: &CompositionGraph, pkg: PackageId) -> Vec<String> {
    g.types()[g[pkg].ty()].exports.keys().cloned().collect()
}

/// Satisfies `node`'s imports from the exports of `providers` (same name, or
/// a semver-compatible version of it, and a type wac accepts for it).
/// Returns (import, provider name) for each import it wired.
fn plug<'p>(
    g: &mut CompositionGraph,
    pkg: PackageId,
    node: NodeId,
    providers: &[(PackageId, NodeId, &'p str)],
) -> Result<Vec<(String, &'p str)>, ComposeError> {
    let mut wired = Vec::new();
    // Interfaces whose resources others use (wasi:io) are bound first, so the
    // types of later imports refer to the provider's resources.
    let mut imports = import_names(g, pkg);
    imports.sort_by_key(|i| !i.starts_with("wasi:io/"));
    for import in imports {
        let mut mismatch = None;
        for &(ppkg, pnode, pname) in providers {
            let Some(export) = export_names(g, ppkg)
                .into_iter()
                .find(|e| *e == import || are_semver_compatible(e, &import))
            else {
                continue;
            };
            let alias = g.alias_instance_export(pnode, &export).map_err(|e| invalid(pname, e))?;
            match g.set_instantiation_argument(node, &import, alias) {
                Ok(()) => {
                    wired.push((import.clone(), pname));
                    mismatch = None;
                    break;
                }
                Err(e) => {
                    g.remove_node(alias);
                    mismatch = Some(format!("`{pname}` exports {export}, but not with the type the app imports: {e:#}"));
                }
            }
        }
        if let Some(m) = mismatch {
            return Err(ComposeError::Invalid(format!("{import}: {m}")));
        }
    }
    Ok(wired)
}
