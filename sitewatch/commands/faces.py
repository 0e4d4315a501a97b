"""``sitewatch faces enrol|remove|list``: the box's local face register (.npz)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

faces_app = typer.Typer(
    help="Enrol workers' faces into a local register file.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole

RegisterOpt = Annotated[
    Path, typer.Option("--register", help="Register file (.npz), faces.register_path.")
]


@faces_app.command("enrol")
def enrol_command(
    photos: Annotated[list[Path], typer.Argument(help="JPEG/PNG photos of the worker.")],
    worker_id: Annotated[str, typer.Option("--worker-id", help="The worker's id.")],
    register: RegisterOpt,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Folder with the YuNet/SFace ONNX files.")
    ] = None,
) -> None:
    """Add a worker's face(s) from photos to the register."""
    from sitewatch.edge.faces.detection import FaceModelError
    from sitewatch.edge.faces.enrol import EnrolmentError, enrol
    from sitewatch.edge.faces.models import load_face_models

    try:
        detector, embedder = load_face_models(models_dir)
        count = enrol(register, worker_id, photos, detector, embedder)
    except (FaceModelError, EnrolmentError, OSError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    console.print(f"{worker_id}: {count} face(s) in {register}", highlight=False)


@faces_app.command("remove")
def remove_command(
    worker_id: Annotated[str, typer.Option("--worker-id", help="The worker's id.")],
    register: RegisterOpt,
) -> None:
    """Remove a worker and every embedding of theirs from the register."""
    from sitewatch.edge.faces.enrol import remove

    if not remove(register, worker_id):
        err_console.print(f"no worker {worker_id!r} in {register}", highlight=False)
        raise typer.Exit(1)
    console.print(f"removed {worker_id} from {register}", highlight=False)


@faces_app.command("list")
def list_command(register: RegisterOpt) -> None:
    """Worker ids in the register and how many faces each has."""
    from sitewatch.edge.faces.tracks import FaceRegister

    loaded = FaceRegister.load(register)
    for worker_id in loaded.worker_ids():
        console.print(f"{worker_id}\t{len(loaded.embeddings(worker_id))}", highlight=False)
