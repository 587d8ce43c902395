"""The citylogin command's key rotation."""
from click.testing import CliRunner

from citylogin.cli import main


def test_keys_rotate_adds_a_key_and_keeps_the_old_ones(tmp_path):
    runner = CliRunner()
    env = {"CITYLOGIN_DATA_DIR": str(tmp_path)}
    first = runner.invoke(main, ["keys", "rotate"], env=env)
    second = runner.invoke(main, ["keys", "rotate"], env=env)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert len(list((tmp_path / "keys").glob("jwt-*.key"))) >= 2


def test_invalid_setting_names_the_variable(tmp_path):
    result = CliRunner().invoke(main, ["keys", "rotate"], env={"CITYLOGIN_DATA_DIR": str(tmp_path),
                                                              "CITYLOGIN_MAX_CONCURRENT_DEVICES": "many"})
    assert result.exit_code != 0
    assert "CITYLOGIN_MAX_CONCURRENT_DEVICES" in result.output
