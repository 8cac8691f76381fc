#!/usr/bin/env python3
"""Build data/countries.csv from the public World Bank / ISO data in data/raw.

Inputs (see data/README.md): population.csv (WDI SP.POP.TOTL), gdp.csv (WDI
NY.GDP.MKTP.CD, current US$), country-codes.csv (ISO 3166 + UN M49) and
supplement.csv (countries in neither World Bank file: Taiwan).

Rules:
- Keep only codes in country-codes.csv `ISO3166-1-Alpha-3` (drops WB aggregates).
- name = `CLDR display name`; region/subregion = UN M49 `Region Name` /
  `Sub-region Name` (fallback SUPPLEMENT_REGION for supplement rows; else fail).
- population / gdp_usd: value of the latest year with data, with that year.
- supplement.csv rows (population, gdp_usd, year) replace World Bank figures.
- Countries with no population are left out. A country that is_independent ==
  Yes with population but no GDP gets gdp_usd = median GDP per capita of the
  other countries of its export tier with (non-imputed) GDP x population
  (the sanctions regime, not the neighbourhood, is what sets such an economy:
  North Korea's UN sub-region median is South Korea's, US$33k per person);
  gdp_year = latest GDP year of those countries; gdp_imputed = 1. Other
  territories lacking a figure are left out.
- income_group from GDP per capita (stand-in for GNI per capita), World Bank
  FY2025 thresholds: low <= 1145 < lower_middle <= 4515 < upper_middle
  <= 14005 < high.
- tier: January 2025 US AI-diffusion framework (TIER1, TIER3 below; 2 else).
Missing input file or column, or a tier-1/3 code absent from the output: exit 2.
"""
import argparse
import csv
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIER1 = {'United States': 'USA', 'Australia': 'AUS', 'Belgium': 'BEL', 'Canada': 'CAN',
         'Denmark': 'DNK', 'Finland': 'FIN', 'France': 'FRA', 'Germany': 'DEU',
         'Ireland': 'IRL', 'Italy': 'ITA', 'Japan': 'JPN', 'Netherlands': 'NLD',
         'New Zealand': 'NZL', 'Norway': 'NOR', 'South Korea': 'KOR', 'Spain': 'ESP',
         'Sweden': 'SWE', 'Taiwan': 'TWN', 'United Kingdom': 'GBR'}
TIER3 = {'China': 'CHN', 'Macau': 'MAC', 'Russia': 'RUS', 'Iran': 'IRN',
         'North Korea': 'PRK', 'Syria': 'SYR', 'Venezuela': 'VEN', 'Cuba': 'CUB',
         'Belarus': 'BLR', 'Myanmar': 'MMR', 'Afghanistan': 'AFG', 'Cambodia': 'KHM',
         'Central African Republic': 'CAF', 'DR Congo': 'COD', 'Eritrea': 'ERI',
         'Haiti': 'HTI', 'Iraq': 'IRQ', 'Lebanon': 'LBN', 'Libya': 'LBY',
         'Nicaragua': 'NIC', 'Somalia': 'SOM', 'South Sudan': 'SSD', 'Sudan': 'SDN',
         'Zimbabwe': 'ZWE'}
SUPPLEMENT_REGION = {'TWN': ('Asia', 'Eastern Asia')}
INCOME = [(1145, 'low'), (4515, 'lower_middle'), (14005, 'upper_middle')]
COLUMNS = ['iso3', 'name', 'region', 'subregion', 'income_group', 'population',
           'population_year', 'gdp_usd', 'gdp_year', 'gdp_imputed', 'tier']


def tier_of(code):
    return 1 if code in TIER1.values() else 3 if code in TIER3.values() else 2


def fail(msg):
    print(f'build_countries: error: {msg}', file=sys.stderr)
    sys.exit(2)


def read(path, required):
    """Rows of a CSV file as dicts; exit 2 if the file or a column is missing."""
    if not path.is_file():
        fail(f'input file {path} not found')
    with path.open(newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames or [], list(reader)
    for col in required:
        if col not in header:
            fail(f'{path}: required column {col!r} missing')
    return rows


def latest(path):
    """{iso3: (year, value)} for the latest year with a non-empty value."""
    out = {}
    for r in read(path, ['Country Code', 'Year', 'Value']):
        code, year, value = r['Country Code'].strip(), int(r['Year']), r['Value'].strip()
        if value and (code not in out or year > out[code][0]):
            out[code] = (year, float(value))
    return out


def income_group(per_capita):
    return next((g for limit, g in INCOME if per_capita <= limit), 'high')


def build(src):
    iso = {r['ISO3166-1-Alpha-3'].strip(): r for r in read(
        src / 'country-codes.csv', ['ISO3166-1-Alpha-3', 'CLDR display name',
                                    'Region Name', 'Sub-region Name', 'is_independent'])}
    pop, gdp = latest(src / 'population.csv'), latest(src / 'gdp.csv')
    supp = {r['iso3'].strip(): r for r in read(
        src / 'supplement.csv', ['iso3', 'name', 'year', 'population', 'gdp_usd', 'source'])}
    rows, pending = {}, []
    for code in sorted(set(iso) | set(supp)):
        c = iso.get(code, {})
        region, sub = (c.get('Region Name', '').strip(), c.get('Sub-region Name', '').strip())
        if not (region and sub):
            if code in SUPPLEMENT_REGION:
                region, sub = SUPPLEMENT_REGION[code]
            elif code in supp or code in pop or code in gdp:
                fail(f'{code}: no Region Name / Sub-region Name in country-codes.csv')
            else:
                continue
        row = {'iso3': code, 'name': c.get('CLDR display name', '').strip(),
               'region': region, 'subregion': sub, 'gdp_imputed': 0}
        if code in supp:
            s = supp[code]
            row.update(name=s['name'].strip(), population=int(s['population']),
                       population_year=int(s['year']), gdp_usd=round(float(s['gdp_usd'])),
                       gdp_year=int(s['year']))
        elif code in pop and code in gdp:
            row.update(population=round(pop[code][1]), population_year=pop[code][0],
                       gdp_usd=round(gdp[code][1]), gdp_year=gdp[code][0])
        elif code in pop and c['is_independent'].strip() == 'Yes':
            row.update(population=round(pop[code][1]), population_year=pop[code][0])
            pending.append(row)
            continue
        else:
            if code in pop or code in gdp:
                print(f'build_countries: dropped {code} ({c["is_independent"]}): '
                      f'population {"yes" if code in pop else "no"}, GDP {"yes" if code in gdp else "no"}',
                      file=sys.stderr)
            continue
        rows[code] = row
    for row in pending:
        donors = [r for r in rows.values() if tier_of(r['iso3']) == tier_of(row['iso3'])]
        if not donors:
            fail(f'{row["iso3"]}: no GDP data in tier {row["tier"]} to impute from')
        pc = statistics.median(r['gdp_usd'] / r['population'] for r in donors)
        row.update(gdp_usd=round(pc * row['population']), gdp_imputed=1,
                   gdp_year=max(r['gdp_year'] for r in donors))
        print(f'build_countries: imputed GDP of {row["iso3"]} = {pc:.0f} US$/person '
              f'(median of {len(donors)} tier-{tier_of(row["iso3"])} countries) x population', file=sys.stderr)
    for row in pending:
        rows[row['iso3']] = row
    for tier, codes in ((1, TIER1), (3, TIER3)):
        for name, code in codes.items():
            if code not in rows:
                fail(f'tier-{tier} country {name} ({code}) missing from the table')
    for row in rows.values():
        row['income_group'] = income_group(row['gdp_usd'] / row['population'])
        row['tier'] = tier_of(row['iso3'])
    return [rows[k] for k in sorted(rows)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--src', type=Path, default=HERE / 'raw',
                    help='folder holding the four input CSV files (default: data/raw beside this script)')
    ap.add_argument('--out', type=Path, default=HERE / 'countries.csv')
    args = ap.parse_args()
    rows = build(args.src)
    part = args.out.with_name(args.out.name + '.part')
    with part.open('w', newline='', encoding='utf-8') as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator='\n')
        w.writeheader()
        w.writerows(rows)
    part.replace(args.out)
    count = lambda key: ', '.join(f'{v}: {sum(r[key] == v for r in rows)}'
                                  for v in sorted({r[key] for r in rows}, key=str))
    print(f'wrote {args.out}: {len(rows)} rows\n  tiers: {count("tier")}\n'
          f'  income groups: {count("income_group")}\n'
          f'  imputed: {[r["iso3"] for r in rows if r["gdp_imputed"]]}\n'
          f'  total population: {sum(r["population"] for r in rows):,}\n'
          f'  total GDP (US$): {sum(r["gdp_usd"] for r in rows):.4e}')


if __name__ == '__main__':
    main()
