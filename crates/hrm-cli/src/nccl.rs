//! NCCL for runs over several CUDA devices: burn copies tensors between GPUs through NCCL,
//! which cudarc loads by the name `libnccl.so` only. PyTorch's pip wheels ship it as
//! `nvidia/nccl/lib/libnccl.so.2` (package nvidia-nccl-cu*), a name nothing loads. Before
//! such a run, [`ensure_loadable`] finds it and, if needed, restarts hrm once with a folder
//! holding a `libnccl.so` link first on `LD_LIBRARY_PATH` — a link to the NCCL libtorch
//! already mapped, when hrm was built with libtorch, so that one NCCL serves both.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the restarted process, so it never restarts again.
const RESTARTED: &str = "HRM_NCCL_RESTARTED";

/// Returns when `libnccl.so` loads; otherwise finds NCCL (`$HRM_NCCL_LIB`, `LD_LIBRARY_PATH`,
/// the system's library folders, Python's `nvidia.nccl` package), links it as `libnccl.so`
/// in `cache/nccl/` and restarts hrm with that folder on `LD_LIBRARY_PATH` (this call then
/// does not return). An error says where it looked and what to install.
pub fn ensure_loadable(cache: &Path) -> anyhow::Result<()> {
    // A build with libtorch (`--features tch`) starts with libtorch's own NCCL mapped; a second
    // NCCL beside it makes every transfer fail ("corrupted comm object"), so cudarc must load
    // that same file.
    let linked = loaded_nccl_files().into_iter().next();
    // SAFETY: loading NCCL runs its initialisers, which do not touch this process's state.
    if let Ok(lib) = unsafe { libloading::Library::new("libnccl.so") } {
        let one_nccl = loaded_nccl_files().len() <= 1;
        drop(lib);
        if one_nccl {
            tracing::info!("NCCL found: libnccl.so loads");
            return Ok(());
        }
    }
    if std::env::var_os(RESTARTED).is_some() {
        anyhow::bail!(
            "libnccl.so still does not load (or is not the NCCL libtorch uses) after linking it into {}",
            cache.join("nccl").display()
        );
    }
    let found = linked.map_or_else(find, |path| Ok(Some(path)))?.ok_or_else(|| {
        anyhow::anyhow!(
            "training on several GPUs needs NCCL (libnccl.so), and none was found (looked at $HRM_NCCL_LIB, LD_LIBRARY_PATH, /usr/lib*, and Python's nvidia.nccl package): install NCCL (e.g. `pip install nvidia-nccl-cu13`), or set HRM_NCCL_LIB to its libnccl.so.2"
        )
    })?;
    let folder = cache.join("nccl");
    std::fs::create_dir_all(&folder)?;
    let link = folder.join("libnccl.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&found, &link)?;
    tracing::info!("NCCL: using {} (linked as {})", found.display(), link.display());
    let path = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) => format!("{}:{}", folder.display(), old.to_string_lossy()),
        None => folder.display().to_string(),
    };
    let error = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", path)
        .env(RESTARTED, "1")
        .exec();
    Err(anyhow::anyhow!("restarting hrm with NCCL on LD_LIBRARY_PATH failed: {error}"))
}

/// The NCCL library files mapped into this process (`/proc/self/maps`), first mapped first.
fn loaded_nccl_files() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut files: Vec<PathBuf> = Vec::new();
    for path in maps.lines().filter_map(|line| line.split_whitespace().nth(5)).map(PathBuf::from) {
        let is_nccl = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("libnccl.so"));
        if is_nccl && !files.contains(&path) {
            files.push(path);
        }
    }
    files
}

/// The first NCCL library found; an error if `$HRM_NCCL_LIB` names no file.
fn find() -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os("HRM_NCCL_LIB").filter(|p| !p.is_empty()).map(PathBuf::from) {
        if !path.is_file() {
            anyhow::bail!("HRM_NCCL_LIB={}: no such file (point it at libnccl.so.2)", path.display());
        }
        return Ok(Some(path));
    }
    let mut folders: Vec<PathBuf> =
        std::env::var_os("LD_LIBRARY_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    folders.extend(["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"].map(PathBuf::from));
    folders.extend(python_nccl_folder());
    Ok(folders.into_iter().map(|f| f.join("libnccl.so.2")).find(|p| p.is_file()))
}

/// `nvidia/nccl/lib` of the `python3` on PATH, if it has the package.
fn python_nccl_folder() -> Option<PathBuf> {
    let script = "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib'))";
    let out = Command::new("python3").args(["-c", script]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
