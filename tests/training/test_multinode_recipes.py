"""The multi-node recipes as far as one CPU machine can take them: the SLURM script's own command on two tasks of a
simulated SLURM job, and the FSDP config building the strategy it promises (Lightning runs FSDP on GPUs only)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.trainer import trainer as trainer_module
from torch.distributed.fsdp.wrap import ModuleWrapPolicy
from transformers.models.roberta.modeling_roberta import RobertaLayer

from project.training.cli import FitCLI
from tests.conftest import make_rows, write_csv

REPO = Path(__file__).parents[2]
# Stands in for srun on one node: starts SLURM_NTASKS copies of the command, each with its task's variables.
FAKE_SRUN = """#!/bin/bash
for rank in $(seq 0 $((SLURM_NTASKS - 1))); do
  SLURM_PROCID=$rank SLURM_LOCALID=$rank SLURM_NODEID=0 "$@" > "$SRUN_LOGS/task$rank.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
"""


@pytest.mark.slow
def test_the_slurm_script_trains_on_two_tasks_of_a_simulated_job(tmp_path, tiny_encoder):
    bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
    bin_dir.mkdir(), logs.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this venv's interpreter
    (bin_dir / "python").chmod(0o755)
    rows = [{"sentence": row["review"], "label": row["sentiment"]} for row in make_rows(48)]
    train = write_csv(tmp_path / "train.csv", rows)
    slurm = {
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "bert-fit", "SLURM_NTASKS": "2", "SLURM_NNODES": "1",
        "SLURM_JOB_NUM_NODES": "1", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NODELIST": "127.0.0.1",
    }  # fmt: skip
    env = {**os.environ, **slurm, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SRUN_LOGS": str(logs)}
    env |= {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    fit_options = [
        "--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--model.encoder", tiny_encoder,
        "--data.train_file", str(train), "--data.text_column", "sentence", "--data.batch_size", "8",
        "--data.num_workers", "0", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "slurm_fit.sbatch"), *fit_options], cwd=REPO, env=env, timeout=300
    )
    task_logs = [(logs / f"task{rank}.log").read_text() for rank in (0, 1)]
    assert result.returncode == 0, task_logs[0][-2000:] + task_logs[1][-2000:]
    # Lightning took the ranks from SLURM: one run, written by rank 0, from a world of two processes.
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in task_logs[1]
    assert "run directory:" in task_logs[0] and "run directory:" not in task_logs[1]
    # Under SLURM, Lightning's default logger names the run folder after the job id.
    run_dir = tmp_path / "runs" / "lightning_logs" / "version_4242"
    assert [path.name for path in run_dir.parent.iterdir()] == ["version_4242"]
    assert (run_dir / "test_metrics.json").exists()


class _Built(Exception):
    pass


def test_the_fsdp_config_wraps_and_checkpoints_each_encoder_block(monkeypatch, tiny_csv, tiny_encoder):
    built = {}

    def capture(self, *args, strategy, **kwargs):  # the Trainer's accelerator check would refuse a CPU machine
        built["strategy"] = strategy
        raise _Built

    monkeypatch.setattr(trainer_module._AcceleratorConnector, "__init__", capture)
    with pytest.raises(_Built):
        FitCLI(args=[
            "--config", str(REPO / "configs" / "fsdp.yaml"), "--model.encoder", tiny_encoder,
            "--data.train_file", str(tiny_csv), "--data.text_column", "review", "--data.label_column", "sentiment",
        ])  # fmt: skip
    strategy = built["strategy"]
    assert isinstance(strategy, FSDPStrategy) and strategy._state_dict_type == "full"
    for policy in (strategy.kwargs["auto_wrap_policy"], strategy._activation_checkpointing_kwargs["auto_wrap_policy"]):
        assert isinstance(policy, ModuleWrapPolicy) and policy._module_classes == {RobertaLayer}
