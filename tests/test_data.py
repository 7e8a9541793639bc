"""Datasets: sources, the one-structure-per-formula rule, subsets, the split, skips, the stored file, the CLI."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from collections import Counter

import numpy as np
import pytest
from pymatgen.core import Composition, Element, Lattice, Structure
from typer.testing import CliRunner

from xrdzoo.cli import app
from xrdzoo.data import (SPLIT_FRACTIONS, SPLITS, Dataset, build_dataset, canonical_subset, content_hash, in_subset,
                         load_dataset, split_of)
from xrdzoo.xrd.simulate import simulate, simulate_cell

COLUMNS = ["material_id", "formula", "spacegroup", "nsites", "e_above_hull", "cif"]


def rock_salt(a: str = "Na", x: str = "Cl", size: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(size), [a, x], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a="Sr", size: float = 3.905) -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(size), [a, "Ti", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])


def spinel() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(8.08), ["Mg", "Al", "O"],
                                     [[0, 0, 0], [0.625, 0.625, 0.625], [0.387, 0.387, 0.387]])


def row(material_id, structure, e_above_hull="", spacegroup="", formula=None, nsites=None, cif=None) -> list:
    return [material_id, formula or structure.composition.reduced_formula, spacegroup,
            len(structure) if nsites is None else nsites, e_above_hull, cif or structure.to(fmt="cif")]


def write_csv(path, rows, columns=COLUMNS):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


BROKEN_CIF = "data_broken\n_cell_length_a 4.0\nloop_\n_atom_site_label\nthis is not a structure\n"
PARTIAL = Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.95), [{"Sr": 0.5, "Ba": 0.5}, "Ti", "O"],
                                    [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
NO_PEAK = Structure(Lattice.cubic(0.7), ["Na"], [[0, 0, 0]])  # |g| of every reflection exceeds 2 / wavelength


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory):
    """Three good formulas (SrTiO3 twice, the worse one first) and one row of each way a row can fail."""
    srtio3 = perovskite()
    rows = [row("mp-2", perovskite(size=4.1), e_above_hull="0.2", spacegroup="221"),
            row("mp-1", srtio3, e_above_hull="0.0", spacegroup="221"),
            row("mp-3", rock_salt(), e_above_hull="0", spacegroup="225"),
            row("mp-4", spinel(), spacegroup="227"),  # no e_above_hull: still the only row of its formula
            row("mp-5", rock_salt("K"), cif=BROKEN_CIF),
            row("mp-6", PARTIAL),
            row("mp-7", rock_salt("Li", "F", 4.03), formula="LiBr"),
            row("mp-8", NO_PEAK)]
    return write_csv(tmp_path_factory.mktemp("csv") / "mixed.csv.gz", rows)


@pytest.fixture(scope="module")
def mixed(mixed_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("built") / "mixed.npz"
    return build_dataset(mixed_csv, path, workers=1, progress=False), load_dataset(path)


# --- selection ------------------------------------------------------------------------------------------------------

def test_one_structure_per_formula_from_a_csv(mixed):
    report, data = mixed
    assert sorted(data.formulas) == ["MgAl2O4", "NaCl", "SrTiO3"]
    assert data.ids[data.formulas.index("SrTiO3")] == "mp-1"  # lower e_above_hull beats the row read first
    assert np.array_equal(data.patterns[data.formulas.index("SrTiO3")], simulate([perovskite()])[0])
    assert dict(zip(data.formulas, data.spacegroups.tolist())) == {"MgAl2O4": 227, "NaCl": 225, "SrTiO3": 221}
    assert report.rows == 8 and report.formulas == 7 and report.kept == 3


def test_selection_rule_uses_columns_only_and_breaks_ties(tmp_path):
    nacl, kcl, lif, rbbr = rock_salt(), rock_salt("K"), rock_salt("Li", "F", 4.03), rock_salt("Rb", "Br", 6.9)
    rows = [row("mp-1", nacl, e_above_hull="0.1", nsites=2, cif=BROKEN_CIF),  # fewer sites, but higher energy
            row("mp-2", nacl, e_above_hull="0.0", nsites=8),
            row("mp-3", kcl, e_above_hull="", nsites=1, cif=BROKEN_CIF),  # unknown energy sorts last
            row("mp-4", kcl, e_above_hull="0.5", nsites=8),
            row("mp-5", lif, e_above_hull="0.0", nsites=8, cif=BROKEN_CIF),  # equal energy: fewer sites wins
            row("mp-6", lif, e_above_hull="0.0", nsites=4),
            row("mp-10", rbbr, e_above_hull="0.0", nsites=8, cif=BROKEN_CIF),  # all equal: mp-9 < mp-10
            row("mp-9", rbbr, e_above_hull="0.0", nsites=8)]
    report = build_dataset(write_csv(tmp_path / "s.csv", rows), tmp_path / "s.npz", workers=1, progress=False)
    data = load_dataset(tmp_path / "s.npz")
    assert dict(zip(data.formulas, data.ids)) == {"NaCl": "mp-2", "KCl": "mp-4", "LiF": "mp-6", "RbBr": "mp-9"}
    assert report.skipped == {}  # the broken CIFs lost the selection, so they were never parsed


def test_without_energies_the_fewest_sites_win(tmp_path):
    conventional = rock_salt()
    primitive = conventional.get_primitive_structure()
    rows = [[r[0], r[1], r[3], r[5]] for r in (row("b", conventional), row("a", primitive))]
    path = write_csv(tmp_path / "s.csv", rows, ["material_id", "formula", "nsites", "cif"])
    build_dataset(path, tmp_path / "s.npz", workers=1, progress=False)
    data = load_dataset(tmp_path / "s.npz")
    assert data.ids == ["a"] and data.spacegroups.tolist() == [225]  # space group found from the structure


def test_folder_of_structure_files(tmp_path):
    folder = tmp_path / "structures"
    (folder / "sub").mkdir(parents=True)
    rock_salt().to(filename=str(folder / "nacl_conventional.cif"))
    rock_salt().get_primitive_structure().to(filename=str(folder / "sub" / "POSCAR"))
    perovskite().to(filename=str(folder / "srtio3.cif"))
    (folder / "broken.cif").write_text(BROKEN_CIF)
    (folder / "notes.txt").write_text("not a structure file, not read")
    report = build_dataset(folder, tmp_path / "f.npz", workers=2, progress=False)
    data = load_dataset(tmp_path / "f.npz")
    assert dict(zip(data.formulas, data.ids)) == {"NaCl": os.path.join("sub", "POSCAR"), "SrTiO3": "srtio3.cif"}
    assert report.rows == 4 and report.skipped == {"unreadable": 1}
    assert report.examples["unreadable"][0].startswith("broken.cif: ")


def test_pymatgen_json(tmp_path):
    entries = [{"structure": perovskite(size=4.1).as_dict(), "material_id": "x-1", "e_above_hull": 0.3},
               {"structure": perovskite().as_dict(), "material_id": "x-2", "e_above_hull": 0.0},
               spinel().as_dict()]
    (tmp_path / "s.json").write_text(json.dumps(entries))
    build_dataset(tmp_path / "s.json", tmp_path / "j.npz", workers=1, progress=False)
    data = load_dataset(tmp_path / "j.npz")
    assert dict(zip(data.formulas, data.ids)) == {"MgAl2O4": "2", "SrTiO3": "x-2"}


# --- skips ---------------------------------------------------------------------------------------------------------

def test_unusable_rows_are_counted_by_reason(mixed):
    report, data = mixed
    expected = {"unreadable": 1, "partial_occupancy": 1, "formula_mismatch": 1, "no_peaks": 1}
    assert report.skipped == expected
    assert data.settings["report"]["skipped"] == expected
    assert report.examples["unreadable"][0].startswith("mp-5: ")
    assert report.kept + sum(report.skipped.values()) == report.formulas
    for reason in expected:
        assert reason in report.describe() and reason in data.describe()


def test_a_source_with_no_usable_row_is_refused(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [row("mp-5", rock_salt(), cif=BROKEN_CIF)])
    with pytest.raises(ValueError, match=r"no usable structure .*1 unreadable"):
        build_dataset(path, tmp_path / "x.npz", workers=1, progress=False)
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(ValueError, match="no usable structure .* for subset ternary"):
        build_dataset(path, tmp_path / "x.npz", subset="ternary", workers=1, progress=False)


def test_bad_sources_give_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no structure source"):
        build_dataset(tmp_path / "missing.csv", tmp_path / "x.npz", progress=False)
    path = write_csv(tmp_path / "c.csv", [["mp-1", "NaCl"]], ["material_id", "formula"])
    with pytest.raises(ValueError, match="lacks column.*nsites, cif"):
        build_dataset(path, tmp_path / "x.npz", progress=False)
    (tmp_path / "s.json").write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="JSON list of pymatgen Structure dicts"):
        build_dataset(tmp_path / "s.json", tmp_path / "x.npz", progress=False)
    (tmp_path / "s.xyz").write_text("")
    with pytest.raises(ValueError, match="cannot tell what"):
        build_dataset(tmp_path / "s.xyz", tmp_path / "x.npz", progress=False)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        build_dataset(tmp_path / "c.csv", tmp_path / "x.npz", workers=0, progress=False)
    with pytest.raises(ValueError, match="unknown simulator"):
        build_dataset(tmp_path / "c.csv", tmp_path / "x.npz", simulator="vesta", progress=False)


# --- subsets -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["abc3", "ABC3", "A3BC", "ABX3", "A2B2C6", "BCA3"])
def test_anonymous_spellings_of_abc3(spelling):
    assert canonical_subset(spelling) == "ABC3"


def test_canonical_subsets():
    assert canonical_subset(None) is None and canonical_subset("Ternary") == "ternary"
    assert canonical_subset("A4BC2") == "AB2C4" == Composition("MgAl2O4").anonymized_formula
    for formula in ["Fe3(OF2)2", "Tl6PbI10", "Co3Bi3N5", "NaCl", "LiFePO4", "Ca3BiSb"]:
        anonymous = Composition(formula).anonymized_formula
        assert canonical_subset(anonymous) == anonymous  # pymatgen's own spelling is already canonical
    assert canonical_subset("binary") == canonical_subset("2") == "binary" and canonical_subset("3") == "ternary"
    assert canonical_subset("Quaternary") == "quaternary" and canonical_subset("quinary+") == "quinary+"
    assert canonical_subset("5") == "5" and canonical_subset("all") is None
    for spelling in ["AAB", "A0BC", "AB1.5", "", "abc", "0", "senary"]:
        with pytest.raises(ValueError, match="unknown subset"):
            canonical_subset(spelling)


def test_subset_membership():
    assert in_subset("SrTiO3", "ABC3") and in_subset("CsInBr3", "ABC3") and not in_subset("MgAl2O4", "ABC3")
    assert in_subset("MgAl2O4", "AB2C4") and in_subset("MgAl2O4", "ternary") and not in_subset("NaCl", "ternary")
    assert not in_subset("Ca3BiSb", "AB2C4") and in_subset("NaCl", None)
    assert in_subset("NaCl", "binary") and not in_subset("SrTiO3", "binary") and in_subset("LiFePO4", "quaternary")
    assert in_subset("YBa2Cu3O7", "quaternary") and in_subset("CaMgAlSiO6F", "quinary+")
    assert in_subset("CaMgAlSiO6", "5") and not in_subset("CaMgAlSiO6F", "5") and not in_subset("LiFePO4", "quinary+")
    for formula, reason in [("Na(Cl", "unbalanced brackets"), ("CDS", "did you mean Cd?")]:
        with pytest.raises(ValueError, match=reason):
            in_subset(formula, "ternary")


def test_subset_builds(mixed_csv, tmp_path):
    abc3 = build_dataset(mixed_csv, tmp_path / "abc3.npz", subset="abc3", workers=1, progress=False)
    ternary = build_dataset(mixed_csv, tmp_path / "t.npz", subset="ternary", workers=1, progress=False)
    assert load_dataset(tmp_path / "abc3.npz").formulas == ["SrTiO3"]
    assert load_dataset(tmp_path / "t.npz").formulas == ["MgAl2O4", "SrTiO3"]
    assert load_dataset(tmp_path / "abc3.npz").settings["subset"] == "ABC3"
    assert abc3.skipped == {} and ternary.skipped == {}  # the broken rows are outside both subsets
    assert ternary.formulas == 2 and abc3.formulas == 1


def test_every_polymorph_ground_state_first(mixed_csv, tmp_path):
    report = build_dataset(mixed_csv, tmp_path / "all.npz", polymorphs="all", workers=1, progress=False)
    data = load_dataset(tmp_path / "all.npz")
    assert data.formulas == ["MgAl2O4", "NaCl", "SrTiO3", "SrTiO3"] and data.ids[2:] == ["mp-1", "mp-2"]
    assert report.kept == 4 and report.formulas == 7 and len(set(data.split[2:])) == 1  # one split per formula
    one = load_dataset(build_dataset(mixed_csv, tmp_path / "one.npz", workers=1, progress=False).output)
    assert one.ids == ["mp-4", "mp-3", "mp-1"] and "more polymorphs" in data.describe()
    with pytest.raises(ValueError, match="polymorphs must be one of one, all"):
        build_dataset(mixed_csv, tmp_path / "x.npz", polymorphs="some", workers=1, progress=False)


def test_several_sources_are_read_as_one(tmp_path):
    first = write_csv(tmp_path / "a.csv", [row("mp-1", rock_salt()), row("mp-2", perovskite(size=4.1),
                                                                          e_above_hull="0.1")])
    second = write_csv(tmp_path / "b.csv", [row("mp-3", perovskite(), e_above_hull="0"), row("mp-4", spinel())])
    build_dataset([first, second], tmp_path / "d.npz", workers=1, progress=False)
    data = load_dataset(tmp_path / "d.npz")
    assert data.formulas == ["MgAl2O4", "NaCl", "SrTiO3"] and data.ids == ["mp-4", "mp-1", "mp-3"]
    assert [s["path"] for s in data.settings["source"]] == [str(first.resolve()), str(second.resolve())]
    build_dataset([first, second], tmp_path / "b.npz", subset="binary", workers=1, progress=False)
    assert load_dataset(tmp_path / "b.npz").formulas == ["NaCl"]
    with pytest.raises(ValueError, match="no usable structure .* for subset quaternary"):
        build_dataset([first, second], tmp_path / "q.npz", subset="quaternary", workers=1, progress=False)


def test_the_fast_cif_reader_gives_pymatgens_structure():
    from xrdzoo.data import _pymatgen_p1

    hexagonal = Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.2, 5.2), ["Mg"], [[1 / 3, 2 / 3, 0.25]])
    for structure in (rock_salt(), perovskite(), spinel(), hexagonal, Structure(Lattice.monoclinic(3, 4, 5, 100),
                                                                                 ["Na", "Cl"], [[0, 0, 0], [0.6667, 0.5, 1.2]])):
        text = structure.to(fmt="cif")
        fast, slow = _pymatgen_p1(text), Structure.from_str(text, fmt="cif")
        assert np.array_equal(fast.lattice.matrix, slow.lattice.matrix)
        assert np.array_equal(fast.frac_coords, slow.frac_coords) and fast.species == slow.species
    assert _pymatgen_p1(BROKEN_CIF) is None and _pymatgen_p1(PARTIAL.to(fmt="cif")) is None


# --- split ---------------------------------------------------------------------------------------------------------

def test_split_proportions_and_stability():
    formulas = [f"X{i}Y{j}Z" for i in range(1, 201) for j in range(1, 101)]
    counts = Counter(split_of(f) for f in formulas)
    for name, fraction in zip(SPLITS, SPLIT_FRACTIONS):
        assert abs(counts[name] / len(formulas) - fraction) < 0.015
    assert [split_of(f) for f in formulas[:500]] == [split_of(f, 0) for f in formulas[:500]]
    other_seed = [split_of(f, 1) for f in formulas[:2000]]
    assert 0.3 < np.mean([a != b for a, b in zip(other_seed, map(split_of, formulas[:2000]))]) < 0.6


def test_split_is_stored_and_agrees_across_subsets(mixed, mixed_csv, tmp_path):
    _, data = mixed
    assert data.split.tolist() == [split_of(f, 0) for f in data.formulas]
    build_dataset(mixed_csv, tmp_path / "seed7.npz", seed=7, workers=1, progress=False)
    seeded = load_dataset(tmp_path / "seed7.npz")
    assert seeded.split.tolist() == [split_of(f, 7) for f in seeded.formulas] and seeded.settings["seed"] == 7


def test_select(mixed):
    _, data = mixed
    parts = {name: data.select(name) for name in SPLITS}
    assert sum(map(len, parts.values())) == len(data)
    for name, part in parts.items():
        assert set(part.split.tolist()) <= {name} and part.patterns.shape == (len(part), 1024)
        assert [data.formulas.index(f) for f in part.formulas] == sorted(data.formulas.index(f) for f in part.formulas)
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        data.select("validation")


# --- the stored file -----------------------------------------------------------------------------------------------

def test_round_trip(mixed, mixed_csv):
    report, data = mixed
    with np.load(report.output, allow_pickle=False) as npz:  # plain arrays: no pickle needed
        assert set(npz.files) == {"formulas", "ids", "patterns", "spacegroups", "split", "settings", "lattices",
                                  "offsets", "frac_coords", "numbers", "e_above_hull"}
    energies = dict(zip(data.ids, data.e_above_hull.tolist()))  # each row's energy above the hull, NaN if none given
    assert energies["mp-1"] == 0.0 and energies["mp-3"] == 0.0 and np.isnan(energies["mp-4"])
    taken = data.take([2, 0])
    np.testing.assert_array_equal(taken.e_above_hull, [energies[i] for i in taken.ids])
    assert data.patterns.dtype == np.float32 and data.patterns.shape == (3, 1024)
    for i, formula in enumerate(data.formulas):  # each row's structure is stored, and simulates to its pattern
        lattice, coords, numbers = data.structures.sites(i)
        elements, counts = np.unique(numbers, return_counts=True)
        assert Composition({Element.from_Z(int(z)): int(c) for z, c in zip(elements, counts)}).reduced_formula == formula
        assert np.allclose(simulate_cell(lattice, coords, numbers), data.patterns[i], atol=1e-3)
    part = data.select("train")
    assert len(part.structures) == len(part) and part.structures.sites(0)[2].tolist() == \
        data.structures.sites(data.formulas.index(part.formulas[0]))[2].tolist()
    assert np.allclose(data.patterns.max(axis=1), 100)
    settings = data.settings
    assert settings["source"]["sha256"] == hashlib.sha256(mixed_csv.read_bytes()).hexdigest()
    assert settings["source"]["path"] == str(mixed_csv.resolve())
    assert settings["simulator"] == "fast" and settings["pattern"]["n_points"] == 1024
    assert settings["subset"] is None and settings["seed"] == 0 and settings["report"]["kept"] == 3
    assert data.hash == content_hash(data.formulas, data.patterns, data.ids, data.spacegroups, data.split)
    changed = data.patterns.copy()
    changed[0, 0] += 1
    assert Dataset.of(data.formulas, changed, data.ids, data.spacegroups, data.split, settings).hash != data.hash


def test_a_file_from_before_energies_were_kept_loads_them_as_unknown(mixed, tmp_path):
    report, data = mixed
    with np.load(report.output, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "e_above_hull"}
    arrays["settings"] = np.array(json.dumps({**data.settings, "format_version": 2}))
    np.savez(tmp_path / "older.npz", **arrays)
    older = load_dataset(tmp_path / "older.npz")
    assert np.isnan(older.e_above_hull).all() and older.hash == data.hash and len(older.structures) == len(data)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    np.savez(tmp_path / "fake.npz", settings=np.array(json.dumps({"format": "something else"})))
    for name in ["text.npz", "other.npz", "fake.npz"]:
        with pytest.raises(ValueError, match="is not an xrdzoo dataset file"):
            load_dataset(tmp_path / name)


def test_no_rebuild_when_up_to_date(mixed_csv, tmp_path):
    out = tmp_path / "d.npz"
    first = build_dataset(mixed_csv, out, workers=1, progress=False)
    stamp = out.stat().st_mtime_ns
    again = build_dataset(mixed_csv, out, workers=1, progress=False)
    assert again.up_to_date and not first.up_to_date and out.stat().st_mtime_ns == stamp
    assert again.kept == first.kept and again.skipped == first.skipped and "up to date" in again.describe()
    assert not build_dataset(mixed_csv, out, workers=1, force=True, progress=False).up_to_date
    assert not build_dataset(mixed_csv, out, seed=1, workers=1, progress=False).up_to_date


def test_a_changed_source_is_rebuilt(tmp_path):
    path = write_csv(tmp_path / "s.csv", [row("mp-1", rock_salt())])
    build_dataset(path, tmp_path / "d.npz", workers=1, progress=False)
    write_csv(path, [row("mp-1", rock_salt()), row("mp-2", perovskite())])
    report = build_dataset(path, tmp_path / "d.npz", workers=1, progress=False)
    assert not report.up_to_date and load_dataset(tmp_path / "d.npz").formulas == ["NaCl", "SrTiO3"]


# --- CLI -----------------------------------------------------------------------------------------------------------

def test_cli_build_and_info(mixed_csv, tmp_path):
    runner = CliRunner()
    out = tmp_path / "c.npz"
    args = ["data", "build", str(mixed_csv), "--output", str(out), "--subset", "ternary", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 2 rows" in result.output
    assert "up to date" in runner.invoke(app, args).output
    info = runner.invoke(app, ["data", "info", str(out)])
    assert info.exit_code == 0 and "2 formulas" in info.output and "subset: ternary" in info.output
    assert load_dataset(out).hash[:16] in info.output


def test_cli_errors_are_one_line(mixed_csv, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "build", str(mixed_csv), "--output", str(tmp_path / "x.npz"),
                                 "--subset", "senary"])
    assert result.exit_code == 1 and "Error: unknown subset 'senary'" in result.output
    result = runner.invoke(app, ["data", "info", str(tmp_path / "missing.npz")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "no dataset file" in result.output


# --- the shared Materials Project data -----------------------------------------------------------------------------

@pytest.mark.slow
def test_abc3_from_the_shared_csv(shared_csv, tmp_path):
    report = build_dataset(shared_csv, tmp_path / "abc3.npz", subset="abc3", progress=False)
    assert report.formulas == 2471  # the shared README's count of ABC3 formulas
    assert report.kept == report.formulas - sum(report.skipped.values())
    data = load_dataset(tmp_path / "abc3.npz")
    assert len(data) == report.kept and all(in_subset(f, "ABC3") for f in data.formulas)
    assert data.split.tolist() == [split_of(f) for f in data.formulas]
