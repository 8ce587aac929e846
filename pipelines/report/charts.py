"""PNG charts of the quarterly report (matplotlib, no pyplot state; DejaVu Sans shipped with matplotlib).

- one trajectory per indicator with a target: each level's value over the quarters against
  the target path;
- a heatmap of agencies x indicators coloured by status against the plan's targets;
- the reporting-rate trend over the report windows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.patches import Patch, Rectangle

from pipelines.periods import period_from_code
from pipelines.report.data import ReportData
from pipelines.report.labels import (
    LEVEL_COLOURS,
    LEVEL_ORDER,
    LEVEL_VI,
    NO_TARGET_CHART,
    OPERATOR_VI,
    RAG_CHART,
    RAG_VI,
    fmt_number,
    font_path,
    short_period,
    worst,
)

DPI = 150


def _rc() -> dict:
    """Style of every chart; the font is the DejaVu Sans file inside matplotlib."""
    for bold in (False, True):
        fontManager.addfont(str(font_path(bold)))
    name = FontProperties(fname=str(font_path())).get_name()
    return {
        "font.family": name,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#DDDDDD",
        "grid.linewidth": 0.6,
        "axes.titleweight": "bold",
        "axes.titlesize": 11,
        "legend.frameon": False,
        "svg.fonttype": "none",
        "pdf.fonttype": 42,
    }


def _footer(fig: Figure, data: ReportData) -> None:
    fig.text(
        0.01,
        0.01,
        f"Nguồn / source: báo cáo CCHC của các cơ quan, đơn vị ({data.jurisdiction_name}); lập ngày {data.generated_on:%d/%m/%Y}",
        fontsize=7,
        color="#666666",
    )


def _save(fig: Figure, path: Path, tight: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"bbox_inches": "tight", "pad_inches": 0.15} if tight else {}
    fig.savefig(path, dpi=DPI, facecolor="white", **extra)
    return path


def trajectory_chart(data: ReportData, indicator: str, path: Path) -> Path:
    """Each level's value over the quarters, with the target path of every target on the indicator."""
    unit = data.indicator_unit(indicator)
    series = data.trajectory[data.trajectory["indicator_code"] == indicator]
    paths = data.target_paths[data.target_paths["indicator_code"] == indicator]
    quarters = sorted(set(series["period_code"]) | set(paths["period_code"]) | {data.quarter.code})
    quarters = [q for q in quarters if q <= data.quarter.code]
    x = {code: i for i, code in enumerate(quarters)}
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(8.5, 4.8))
        ax = fig.add_axes((0.08, 0.26, 0.9, 0.58))
        levels = sorted(set(series["admin_level"]) | set(paths["target_level"]), key=LEVEL_ORDER.get)
        top = 0.0
        for level in levels:
            colour = LEVEL_COLOURS.get(level, "#333333")
            rows = series[series["admin_level"] == level].dropna(subset=["value"]).sort_values("period_code")
            rows = rows[rows["period_code"].isin(x)]
            if not rows.empty:
                xs = [x[c] for c in rows["period_code"]]
                ax.plot(xs, rows["value"], marker="o", color=colour, linewidth=2, label=f"{LEVEL_VI[level]} – thực hiện")
                last = rows.iloc[-1]
                ax.annotate(
                    fmt_number(last["value"], unit),
                    (x[last["period_code"]], last["value"]),
                    textcoords="offset points",
                    xytext=(8, 10 - 11 * LEVEL_ORDER.get(level, 0)),  # staggered so close values stay legible
                    va="center",
                    fontsize=8,
                    color=colour,
                    fontweight="bold",
                )
                top = max(top, float(rows["value"].max()))
            for target_id, target in paths[paths["target_level"] == level].groupby("target_id", sort=True):
                target = target[target["period_code"].isin(x)].sort_values("period_code")
                if target.empty:
                    continue
                xs = [x[c] for c in target["period_code"]]
                # a step per year: the target in force during each quarter, held to the end of the quarter
                step_x = [*xs, xs[-1] + 0.5]
                step_y = [*target["target"], target["target"].iloc[-1]]
                label = f"{LEVEL_VI[level]} – chỉ tiêu {target_id} ({OPERATOR_VI.get(target['operator'].iloc[0], '')})"
                ax.step([v - 0.5 for v in step_x], step_y, where="post", linestyle="--", color=colour, linewidth=1.4, label=label)
                if target["target_max"].notna().any():
                    ax.fill_between(
                        [v - 0.5 for v in step_x],
                        step_y,
                        [*target["target_max"], target["target_max"].iloc[-1]],
                        step="post",
                        color=colour,
                        alpha=0.12,
                    )
                top = max(
                    top,
                    float(target["target"].max()),
                    float(target["target_max"].max() if target["target_max"].notna().any() else 0),
                )
        ax.set_xticks(range(len(quarters)), [short_period(period_from_code(q)) for q in quarters])
        ax.set_xlim(-0.6, max(len(quarters) - 0.4, 0.6))
        if unit == "%":
            ax.set_ylim(0, 105)
        else:
            ax.set_ylim(0, max(top * 1.15, 1))
        ax.set_ylabel(unit or "")
        name = data.indicator_name(indicator)
        fig.suptitle("\n".join(textwrap.wrap(name, 80)), fontsize=11, fontweight="bold", x=0.01, ha="left", y=0.97)
        fig.text(
            0.01,
            0.895 if len(name) <= 80 else 0.85,
            f"{data.jurisdiction_name} – diễn biến theo quý đến {data.quarter.label_vi} so với lộ trình chỉ tiêu (indicator vs target path)",
            fontsize=8,
            color="#444444",
        )
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7.5, bbox_to_anchor=(0.5, 0.05))
        else:
            ax.text(0.5, 0.5, "Chưa có số liệu / no data", transform=ax.transAxes, ha="center", color="#888888")
        _footer(fig, data)
        return _save(fig, path)


def heatmap_chart(data: ReportData, path: Path) -> Path:
    """Agencies (rows) x indicators with a target (columns), coloured by status; the value is written in."""
    indicators = data.target_indicators
    agencies = data.agencies
    values = data.values[data.values["scope"] == "agency"].set_index(["indicator_code", "org_unit_code"])["value"].to_dict()
    status = data.agency_status.groupby(["indicator_code", "org_unit_code"])["status"].apply(list).to_dict()
    n_rows, n_cols = max(len(agencies), 1), max(len(indicators), 1)
    width = min(max(3.0, 0.5 * n_cols), 18)
    height = min(max(2.5, 0.3 * n_rows), 30)
    with matplotlib.rc_context(_rc() | {"axes.grid": False, "axes.spines.left": False, "axes.spines.bottom": False}):
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        for i, agency in enumerate(agencies.to_dict("records")):
            for j, code in enumerate(indicators):
                states = status.get((code, agency["org_unit_code"]))
                colour = RAG_CHART[worst(states)] if states else NO_TARGET_CHART
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="white", linewidth=1.5))
                value = values.get((code, agency["org_unit_code"]))
                text = fmt_number(value, "", 0) if value is not None else ""
                if text and text != "–":
                    ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7, color="#222222")
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_rows, 0)
        ax.set_yticks(
            [i + 0.5 for i in range(len(agencies))],
            [
                textwrap.shorten(f"{r['name_vi']} ({r['org_unit_code']})", 48, placeholder="…")
                for r in agencies.to_dict("records")
            ],
            fontsize=7.5,
        )
        ax.xaxis.tick_top()
        ax.set_xticks(
            [j + 0.5 for j in range(len(indicators))],
            [textwrap.shorten(data.indicator_name(c), 42, placeholder="…") for c in indicators],
            rotation=55,
            ha="left",
            fontsize=7,
        )
        ax.tick_params(length=0)
        if not indicators:
            ax.text(
                0.5,
                0.5,
                "Kế hoạch chưa có chỉ tiêu đo được ở cấp đơn vị / no agency-level targets",
                ha="center",
                transform=ax.transAxes,
            )
        ax.set_title(
            f"Mức đạt chỉ tiêu theo đơn vị – {data.jurisdiction_name} – {data.quarter.label_vi}\n"
            "(màu: tình trạng so với chỉ tiêu kế hoạch; số: giá trị của đơn vị / colour: status against the plan's target; number: value)",
            loc="left",
            fontsize=10,
            pad=10,
        )
        legend = [Patch(facecolor=RAG_CHART[k], label=f"{RAG_VI[k]}") for k in ("green", "amber", "red", "grey")]
        legend.append(Patch(facecolor=NO_TARGET_CHART, edgecolor="#BBBBBB", label="Không có chỉ tiêu cho đơn vị"))
        ax.legend(handles=legend, loc="upper left", ncol=5, fontsize=7.5, bbox_to_anchor=(0, -0.01))
        ax.text(
            0,
            -0.9 / height,
            f"Nguồn / source: báo cáo CCHC của các cơ quan, đơn vị ({data.jurisdiction_name}); lập ngày {data.generated_on:%d/%m/%Y}",
            transform=ax.transAxes,
            fontsize=7,
            color="#666666",
        )
        return _save(fig, path, tight=True)


def reporting_trend_chart(data: ReportData, path: Path) -> Path:
    """Reporting and on-time rates per report window (whole jurisdiction), with the counts."""
    trend = data.reporting_trend
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(8.5, 4.6))
        ax = fig.add_axes((0.08, 0.22, 0.9, 0.62))
        whole = trend[trend["admin_level"] == "all"]
        windows = list(dict.fromkeys(whole["period_code"]))
        xs = list(range(len(windows)))
        if windows:
            ax.bar(xs, whole["reporting_rate"], width=0.55, color="#9ECAE1", label="Tỷ lệ nộp báo cáo (reporting rate)")
            ax.plot(
                xs, whole["on_time_rate"], marker="o", color="#08519C", linewidth=2, label="Tỷ lệ nộp đúng hạn (on-time rate)"
            )
            for x, row in zip(xs, whole.to_dict("records"), strict=True):
                ax.text(
                    x,
                    2,
                    f"{row['received_reports']}/{row['expected_reports']}",
                    ha="center",
                    fontsize=8,
                    color="#08306B",
                )
                ax.annotate(
                    fmt_number(row["on_time_rate"], "%"),
                    (x, row["on_time_rate"]),
                    textcoords="offset points",
                    xytext=(0, 9),
                    ha="center",
                    fontsize=8,
                    color="#08519C",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
                )
            for level in sorted(set(trend["admin_level"]) - {"all"}, key=LEVEL_ORDER.get):
                rows = trend[trend["admin_level"] == level].set_index("period_code").reindex(windows)
                ax.plot(
                    xs,
                    rows["on_time_rate"],
                    linestyle=":",
                    marker=".",
                    color=LEVEL_COLOURS.get(level, "#666666"),
                    label=f"Đúng hạn – {LEVEL_VI[level].lower()}",
                )
        else:
            ax.text(0.5, 0.5, "Chưa có báo cáo nào đến hạn / no report due yet", transform=ax.transAxes, ha="center")
        ax.set_xticks(xs, [short_period(period_from_code(w)) for w in windows])
        ax.set_ylim(0, 118)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("% số báo cáo phải nộp")
        fig.suptitle(
            f"Tình hình nộp báo cáo CCHC – {data.jurisdiction_name}",
            x=0.01,
            ha="left",
            y=0.97,
            fontsize=11,
            fontweight="bold",
        )
        fig.text(
            0.01,
            0.875,
            "Theo kỳ báo cáo đến " + data.window.label_vi + "; số trong cột: đã nộp / phải nộp (received / expected)",
            fontsize=8,
            color="#444444",
        )
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7.5, bbox_to_anchor=(0.5, 0.04))
        _footer(fig, data)
        return _save(fig, path)


def write_charts(data: ReportData, folder: Path, stem: str) -> dict[str, Path]:
    """Every chart of one report; keys: 'heatmap', 'reporting', 'trajectory:<indicator>'."""
    charts = {
        "reporting": reporting_trend_chart(data, folder / f"{stem}_ty-le-nop-bao-cao.png"),
        "heatmap": heatmap_chart(data, folder / f"{stem}_ban-do-nhiet.png"),
    }
    measured = set(data.trajectory.dropna(subset=["value"])["indicator_code"])
    for indicator in (c for c in data.target_indicators if c in measured):
        charts[f"trajectory:{indicator}"] = trajectory_chart(data, indicator, folder / f"{stem}_xu-huong_{indicator}.png")
    return charts
